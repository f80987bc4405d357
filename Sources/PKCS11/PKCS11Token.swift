import CPKCS11
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

private func check(_ function: String, _ value: CK_RV) throws(PKCS11Error) {
    guard value == CKR_OK else { throw PKCS11Error.call(function, UInt(value)) }
}

/// A logged-in session on a PKCS #11 token: finds keys and certificates by id or label, and
/// signs and decrypts with keys that never leave the token.
///
/// `@unchecked Sendable`: the module's function list and the session are used only while
/// `lock` is held, so one call at a time reaches the token through this session.
public final class PKCS11Token: @unchecked Sendable {
    /// A key or certificate on the token.
    public struct Object: Sendable, Hashable {
        public let handle: UInt
    }

    /// What finds an object: its `CKA_ID` (the bytes of the flag's text, as MarbleRun takes it)
    /// or its `CKA_LABEL`, or both.
    public struct Selector: Sendable, CustomStringConvertible {
        public var id: [UInt8]?
        public var label: String?

        public init(id: String?, label: String?) {
            self.id = id.map { Array($0.utf8) }
            self.label = label
        }

        public var description: String {
            [id.map { "id \"\(String(decoding: $0, as: UTF8.self))\"" }, label.map { "label \"\($0)\"" }]
                .compactMap { $0 }.joined(separator: " and ")
        }
    }

    private let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>
    private let session: CK_SESSION_HANDLE
    private let lock = Mutex(())
    private let library: UnsafeMutableRawPointer
    public let configuration: PKCS11Configuration

    /// Loads the module, finds the token and logs in with the configuration's PIN.
    public static func open(_ configuration: PKCS11Configuration) throws(PKCS11Error) -> PKCS11Token {
        guard let library = dlopen(configuration.path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw PKCS11Error(.module, "cannot load the PKCS #11 module \(configuration.path): \(reason)")
        }
        guard let symbol = dlsym(library, "C_GetFunctionList") else {
            dlclose(library)
            throw PKCS11Error(.module, "\(configuration.path) is not a PKCS #11 module (no C_GetFunctionList)")
        }
        typealias GetFunctionList =
            @convention(c) (UnsafeMutablePointer<UnsafeMutablePointer<CK_FUNCTION_LIST>?>?) ->
            CK_RV
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        let listed = unsafeBitCast(symbol, to: GetFunctionList.self)(&list)
        guard listed == CKR_OK, let functions = list else {
            dlclose(library)
            throw PKCS11Error(.module, "\(configuration.path) gave no function list: \(ReturnValue.name(listed))")
        }
        do throws(PKCS11Error) {
            var arguments = CK_C_INITIALIZE_ARGS()
            arguments.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
            let initialised = functions.pointee.C_Initialize(&arguments)
            guard initialised == CKR_OK || initialised == CKR_CRYPTOKI_ALREADY_INITIALIZED else {
                throw PKCS11Error(
                    .module,
                    "the PKCS #11 module \(configuration.path) did not initialise: \(ReturnValue.name(initialised))")
            }
            let slot = try findSlot(configuration, functions: functions)
            var session = CK_SESSION_HANDLE(0)
            try check(
                "C_OpenSession", functions.pointee.C_OpenSession(slot, CK_FLAGS(CKF_SERIAL_SESSION), nil, nil, &session)
            )
            var pin = Array(configuration.pin.utf8)
            let login = functions.pointee.C_Login(session, CK_USER_TYPE(CKU_USER), &pin, CK_ULONG(pin.count))
            guard login == CKR_OK || login == CKR_USER_ALREADY_LOGGED_IN else {
                _ = functions.pointee.C_CloseSession(session)
                throw PKCS11Error(
                    .login, "the token refused the PIN of the PKCS #11 configuration: \(ReturnValue.name(login))")
            }
            return PKCS11Token(
                functions: functions, session: session, library: library, configuration: configuration)
        } catch {
            dlclose(library)
            throw error
        }
    }

    private init(
        functions: UnsafeMutablePointer<CK_FUNCTION_LIST>, session: CK_SESSION_HANDLE, library: UnsafeMutableRawPointer,
        configuration: PKCS11Configuration
    ) {
        self.functions = functions
        self.session = session
        self.library = library
        self.configuration = configuration
    }

    deinit {
        _ = functions.pointee.C_Logout(session)
        _ = functions.pointee.C_CloseSession(session)
        // The module stays initialised and loaded: another token object may share it.
    }

    /// A fixed-size, space-padded text field of a token's information.
    private static func text<T>(_ field: T) -> String {
        withUnsafeBytes(of: field) { String(decoding: $0, as: UTF8.self) }.trimmingCharacters(in: .whitespaces)
    }

    private static func findSlot(
        _ configuration: PKCS11Configuration, functions: UnsafeMutablePointer<CK_FUNCTION_LIST>
    )
        throws(PKCS11Error) -> CK_SLOT_ID
    {
        var count = CK_ULONG(0)
        try check("C_GetSlotList", functions.pointee.C_GetSlotList(CK_BBOOL(CK_TRUE), nil, &count))
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        try check("C_GetSlotList", functions.pointee.C_GetSlotList(CK_BBOOL(CK_TRUE), &slots, &count))
        var seen: [String] = []
        for slot in slots.prefix(Int(count)) {
            var info = CK_TOKEN_INFO()
            guard functions.pointee.C_GetTokenInfo(slot, &info) == CKR_OK else { continue }
            let label = text(info.label)
            let serial = text(info.serialNumber)
            seen.append("slot \(slot) \"\(label)\" (serial \(serial))")
            switch configuration.token {
            case .label(let wanted) where wanted == label: return slot
            case .serial(let wanted) where wanted == serial: return slot
            case .slot(let wanted) where CK_SLOT_ID(wanted) == slot: return slot
            default: continue
            }
        }
        throw PKCS11Error(
            .tokenNotFound,
            "no token matches the PKCS #11 configuration's \(configuration.token) in \(configuration.path); the module has: \(seen.isEmpty ? "no token" : seen.joined(separator: ", "))"
        )
    }

    private func locked<T>(_ body: () throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        let result: Result<T, PKCS11Error> = lock.withLock { _ in
            do throws(PKCS11Error) { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The one private key (`CKO_PRIVATE_KEY`) or certificate (`CKO_CERTIFICATE`) that
    /// `selector` names.
    public func find(_ kind: ObjectKind, _ selector: Selector) throws(PKCS11Error) -> Object {
        guard selector.id != nil || selector.label != nil else {
            throw PKCS11Error(.objectNotFound, "name the token's \(kind) by id or label")
        }
        return try locked { () throws(PKCS11Error) -> Object in
            var objectClass = kind.objectClass
            var values: [(CK_ATTRIBUTE_TYPE, [UInt8])] = []
            if let id = selector.id { values.append((CK_ATTRIBUTE_TYPE(CKA_ID), id)) }
            if let label = selector.label { values.append((CK_ATTRIBUTE_TYPE(CKA_LABEL), Array(label.utf8))) }
            let found = try withTemplate(values, objectClass: &objectClass) { template throws(PKCS11Error) in
                try check(
                    "C_FindObjectsInit",
                    functions.pointee.C_FindObjectsInit(session, template.baseAddress, CK_ULONG(template.count)))
                var handles = [CK_OBJECT_HANDLE](repeating: 0, count: 2)
                var count = CK_ULONG(0)
                let listed = functions.pointee.C_FindObjects(session, &handles, 2, &count)
                _ = functions.pointee.C_FindObjectsFinal(session)
                try check("C_FindObjects", listed)
                return Array(handles.prefix(Int(count)))
            }
            guard found.count == 1 else {
                throw PKCS11Error(
                    .objectNotFound,
                    found.isEmpty
                        ? "the token holds no \(kind) with \(selector)"
                        : "the token holds more than one \(kind) with \(selector): name it by id and label")
            }
            return Object(handle: UInt(found[0]))
        }
    }

    /// Runs `body` with a C template of `CKA_CLASS` and `values`, whose memory lives as long as the call.
    private func withTemplate<T>(
        _ values: [(CK_ATTRIBUTE_TYPE, [UInt8])], objectClass: inout CK_OBJECT_CLASS,
        _ body: (UnsafeMutableBufferPointer<CK_ATTRIBUTE>) throws(PKCS11Error) -> T
    ) throws(PKCS11Error) -> T {
        let buffers = values.map { value -> UnsafeMutableRawBufferPointer in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(value.1.count, 1), alignment: 8)
            buffer.copyBytes(from: value.1)
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        return try withUnsafeMutablePointer(to: &objectClass) { classPointer throws(PKCS11Error) -> T in
            var template = [
                CK_ATTRIBUTE(
                    type: CK_ATTRIBUTE_TYPE(CKA_CLASS), pValue: UnsafeMutableRawPointer(classPointer),
                    ulValueLen: CK_ULONG(MemoryLayout<CK_OBJECT_CLASS>.size))
            ]
            for (value, buffer) in zip(values, buffers) {
                template.append(
                    CK_ATTRIBUTE(type: value.0, pValue: buffer.baseAddress, ulValueLen: CK_ULONG(value.1.count)))
            }
            return try template.withUnsafeMutableBufferPointer { pointer throws(PKCS11Error) -> T in try body(pointer) }
        }
    }

    /// An attribute's bytes: `CKA_VALUE` of a certificate (its DER), `CKA_MODULUS` of an RSA key.
    public func attribute(_ type: Attribute, of object: Object) throws(PKCS11Error) -> [UInt8] {
        try locked { () throws(PKCS11Error) -> [UInt8] in
            var attribute = CK_ATTRIBUTE(type: type.rawValue, pValue: nil, ulValueLen: 0)
            try check(
                "C_GetAttributeValue",
                functions.pointee.C_GetAttributeValue(session, CK_OBJECT_HANDLE(object.handle), &attribute, 1))
            guard attribute.ulValueLen > 0, attribute.ulValueLen < 1 << 20 else {
                throw PKCS11Error(.operation, "the token's object has no usable \(type)")
            }
            var value = [UInt8](repeating: 0, count: Int(attribute.ulValueLen))
            let read = value.withUnsafeMutableBytes { bytes in
                attribute.pValue = bytes.baseAddress
                return functions.pointee.C_GetAttributeValue(session, CK_OBJECT_HANDLE(object.handle), &attribute, 1)
            }
            try check("C_GetAttributeValue", read)
            return Array(value.prefix(Int(attribute.ulValueLen)))
        }
    }

    /// Signs `data` with `key` by `mechanism`; the token does the hashing the mechanism names.
    public func sign(_ data: [UInt8], with key: Object, mechanism: Mechanism) throws(PKCS11Error) -> [UInt8] {
        try locked { () throws(PKCS11Error) -> [UInt8] in
            try mechanism.withC { pointer throws(PKCS11Error) in
                try check("C_SignInit", functions.pointee.C_SignInit(session, pointer, CK_OBJECT_HANDLE(key.handle)))
            }
            var input = data
            var length = CK_ULONG(0)
            try check("C_Sign", functions.pointee.C_Sign(session, &input, CK_ULONG(input.count), nil, &length))
            var output = [UInt8](repeating: 0, count: Int(length))
            try check("C_Sign", functions.pointee.C_Sign(session, &input, CK_ULONG(input.count), &output, &length))
            return Array(output.prefix(Int(length)))
        }
    }

    /// Decrypts `ciphertext` with `key` by `mechanism`.
    public func decrypt(_ ciphertext: [UInt8], with key: Object, mechanism: Mechanism) throws(PKCS11Error) -> [UInt8] {
        try locked { () throws(PKCS11Error) -> [UInt8] in
            try mechanism.withC { pointer throws(PKCS11Error) in
                try check(
                    "C_DecryptInit", functions.pointee.C_DecryptInit(session, pointer, CK_OBJECT_HANDLE(key.handle)))
            }
            var input = ciphertext
            var length = CK_ULONG(0)
            try check("C_Decrypt", functions.pointee.C_Decrypt(session, &input, CK_ULONG(input.count), nil, &length))
            var output = [UInt8](repeating: 0, count: Int(length))
            try check(
                "C_Decrypt", functions.pointee.C_Decrypt(session, &input, CK_ULONG(input.count), &output, &length))
            return Array(output.prefix(Int(length)))
        }
    }
}

extension PKCS11Token {
    /// The kinds of object the CLI looks up.
    public enum ObjectKind: String, Sendable, CustomStringConvertible {
        case privateKey = "private key"
        case certificate

        var objectClass: CK_OBJECT_CLASS {
            switch self {
            case .privateKey: return CK_OBJECT_CLASS(CKO_PRIVATE_KEY)
            case .certificate: return CK_OBJECT_CLASS(CKO_CERTIFICATE)
            }
        }

        public var description: String { rawValue }
    }

    /// The attributes the CLI reads.
    public enum Attribute: Sendable, CustomStringConvertible {
        case value
        case modulus

        var rawValue: CK_ATTRIBUTE_TYPE {
            switch self {
            case .value: return CK_ATTRIBUTE_TYPE(CKA_VALUE)
            case .modulus: return CK_ATTRIBUTE_TYPE(CKA_MODULUS)
            }
        }

        public var description: String { self == .value ? "value" : "modulus" }
    }

    /// The mechanisms the CLI signs and decrypts with.
    public enum Mechanism: Sendable {
        /// ECDSA over a digest the caller computed; the signature is r ‖ s.
        case ecdsa
        /// RSASSA-PKCS1-v1_5 with SHA-256, hashed by the token.
        case rsaPKCS1SHA256
        /// RSASSA-PKCS1-v1_5 padding of a DER DigestInfo the caller built (`CKM_RSA_PKCS`): what
        /// tokens without `CKM_SHA256_RSA_PKCS` (openCryptoki's soft token) sign with.
        case rsaPKCS1DigestInfo
        /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt, hashed by the token.
        case rsaPSSSHA256
        /// RSAES-OAEP with SHA-256 and MGF1-SHA-256, no label.
        case rsaOAEPSHA256

        func withC<T>(_ body: (UnsafeMutablePointer<CK_MECHANISM>) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
            switch self {
            case .ecdsa: return try Self.call(CK_MECHANISM_TYPE(CKM_ECDSA), parameter: nil as Int?, body)
            case .rsaPKCS1SHA256:
                return try Self.call(CK_MECHANISM_TYPE(CKM_SHA256_RSA_PKCS), parameter: nil as Int?, body)
            case .rsaPKCS1DigestInfo:
                return try Self.call(CK_MECHANISM_TYPE(CKM_RSA_PKCS), parameter: nil as Int?, body)
            case .rsaPSSSHA256:
                let parameter = CK_RSA_PKCS_PSS_PARAMS(
                    hashAlg: CK_MECHANISM_TYPE(CKM_SHA256), mgf: CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA256), sLen: 32)
                return try Self.call(CK_MECHANISM_TYPE(CKM_SHA256_RSA_PKCS_PSS), parameter: parameter, body)
            case .rsaOAEPSHA256:
                let parameter = CK_RSA_PKCS_OAEP_PARAMS(
                    hashAlg: CK_MECHANISM_TYPE(CKM_SHA256), mgf: CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA256),
                    source: CK_RSA_PKCS_OAEP_SOURCE_TYPE(CKZ_DATA_SPECIFIED), pSourceData: nil, ulSourceDataLen: 0)
                return try Self.call(CK_MECHANISM_TYPE(CKM_RSA_PKCS_OAEP), parameter: parameter, body)
            }
        }

        private static func call<P, T>(
            _ type: CK_MECHANISM_TYPE, parameter: P?,
            _ body: (UnsafeMutablePointer<CK_MECHANISM>) throws(PKCS11Error) -> T
        ) throws(PKCS11Error) -> T {
            guard var parameter else {
                var mechanism = CK_MECHANISM(mechanism: type, pParameter: nil, ulParameterLen: 0)
                return try body(&mechanism)
            }
            return try withUnsafeMutablePointer(to: &parameter) { pointer throws(PKCS11Error) -> T in
                var mechanism = CK_MECHANISM(
                    mechanism: type, pParameter: UnsafeMutableRawPointer(pointer),
                    ulParameterLen: CK_ULONG(MemoryLayout<P>.size))
                return try body(&mechanism)
            }
        }
    }
}
