// PKCS #11 (Cryptoki) types and function list: p11-kit's pkcs11.h (version 0.24.1, copied
// unchanged; its notice permits copying). Only the header is used: the token's module is
// loaded at run time with dlopen, so building needs no package.
#include "pkcs11.h"
