/// Why a PKCS #11 token could not be used, with what to check.
public struct PKCS11Error: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// The configuration file is missing, malformed or names no token.
        case configuration
        /// The module could not be loaded or initialised.
        case module
        /// No slot holds the token the configuration names.
        case tokenNotFound
        /// The PIN was refused.
        case login
        /// No object (or more than one) matches the id or label given.
        case objectNotFound
        /// The token refused an operation.
        case operation
        /// The token does not offer a mechanism with these parameters.
        case mechanism
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// A refusal of `function` with the token's return value, named as the standard names it.
    static func call(_ function: String, _ value: UInt) -> PKCS11Error {
        // CKR_ARGUMENTS_BAD is what SoftHSM2 answers to mechanism parameters it does not support.
        let unsupported: Set<UInt> = [0x7, 0x70, 0x71]
        let isInit = function.hasSuffix("Init")
        return PKCS11Error(
            isInit && unsupported.contains(value) ? .mechanism : .operation,
            "the token refused \(function): \(ReturnValue.name(value))")
    }
}

/// Names of the PKCS #11 return values a user may meet.
enum ReturnValue {
    static let names: [UInt: String] = [
        0x0: "CKR_OK", 0x5: "CKR_GENERAL_ERROR", 0x6: "CKR_FUNCTION_FAILED", 0x7: "CKR_ARGUMENTS_BAD",
        0x20: "CKR_DATA_INVALID", 0x21: "CKR_DATA_LEN_RANGE", 0x30: "CKR_DEVICE_ERROR",
        0x40: "CKR_ENCRYPTED_DATA_INVALID", 0x41: "CKR_ENCRYPTED_DATA_LEN_RANGE", 0x60: "CKR_KEY_HANDLE_INVALID",
        0x63: "CKR_KEY_TYPE_INCONSISTENT", 0x68: "CKR_KEY_FUNCTION_NOT_PERMITTED", 0x70: "CKR_MECHANISM_INVALID",
        0x71: "CKR_MECHANISM_PARAM_INVALID", 0x82: "CKR_OBJECT_HANDLE_INVALID", 0xa0: "CKR_PIN_INCORRECT",
        0xa4: "CKR_PIN_LOCKED", 0xb3: "CKR_SESSION_HANDLE_INVALID", 0xe0: "CKR_TOKEN_NOT_PRESENT",
        0x101: "CKR_USER_NOT_LOGGED_IN", 0x150: "CKR_BUFFER_TOO_SMALL", 0x190: "CKR_CRYPTOKI_NOT_INITIALIZED",
    ]

    static func name(_ value: UInt) -> String {
        names[value] ?? "CKR 0x" + String(value, radix: 16)
    }
}
