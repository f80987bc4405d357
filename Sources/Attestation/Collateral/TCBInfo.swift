import Foundation

/// Intel's TCB Info (versions 2 and 3, SGX and TDX): the TCB levels of one FMSPC.
public struct TCBInfo: Sendable, Hashable, Decodable {
    public struct Level: Sendable, Hashable {
        public var sgxComponents: [UInt8]
        public var tdxComponents: [UInt8]?
        public var pceSVN: UInt16
        public var status: TCBStatus
        public var advisoryIDs: [String]
    }

    public struct ModuleIdentity: Sendable, Hashable {
        public var id: String
        public var mrSigner: [UInt8]
        public var attributes: [UInt8]
        public var attributesMask: [UInt8]
        /// (ISVSVN, status, advisories), highest first.
        public var levels: [(isvSVN: UInt16, status: TCBStatus, advisoryIDs: [String])]

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.id == rhs.id && lhs.mrSigner == rhs.mrSigner && lhs.attributes == rhs.attributes
                && lhs.attributesMask == rhs.attributesMask
                && lhs.levels.map(\.isvSVN) == rhs.levels.map(\.isvSVN)
                && lhs.levels.map(\.status) == rhs.levels.map(\.status)
        }

        public func hash(into hasher: inout Hasher) { hasher.combine(id) }
    }

    /// "SGX" or "TDX" (version 3); nil in version 2.
    public var id: String?
    public var version: Int
    public var issueDate: Date
    public var nextUpdate: Date
    public var fmspc: [UInt8]
    public var pceID: [UInt8]
    public var levels: [Level]
    /// TDX only: the default module identity and those per major version.
    public var tdxModule: ModuleIdentity?
    public var tdxModuleIdentities: [ModuleIdentity]

    private enum Keys: String, CodingKey {
        case id, version, issueDate, nextUpdate, fmspc, pceId, tcbLevels, tdxModule, tdxModuleIdentities
        case tcb, tcbStatus, advisoryIDs, sgxtcbcomponents, tdxtcbcomponents, pcesvn, svn, isvsvn
        case mrsigner, attributes, attributesMask
    }

    private struct DynamicKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        id = try container.decodeIfPresent(String.self, forKey: .id)
        version = try container.decode(Int.self, forKey: .version)
        issueDate = try CollateralDate.decode(container, .issueDate)
        nextUpdate = try CollateralDate.decode(container, .nextUpdate)
        fmspc = try CollateralHex.decode(container, .fmspc, length: 6)
        pceID = try CollateralHex.decode(container, .pceId, length: 2)
        var levelsContainer = try container.nestedUnkeyedContainer(forKey: .tcbLevels)
        var levels: [Level] = []
        while !levelsContainer.isAtEnd {
            let level = try levelsContainer.nestedContainer(keyedBy: Keys.self)
            let status = TCBStatus(rawValue: try level.decode(String.self, forKey: .tcbStatus))
            let advisories = try level.decodeIfPresent([String].self, forKey: .advisoryIDs) ?? []
            let tcb = try level.nestedContainer(keyedBy: Keys.self, forKey: .tcb)
            let pceSVN = try tcb.decode(UInt16.self, forKey: .pcesvn)
            var sgx: [UInt8]
            var tdx: [UInt8]?
            if tcb.contains(.sgxtcbcomponents) {
                sgx = try Self.components(tcb, .sgxtcbcomponents)
                if tcb.contains(.tdxtcbcomponents) { tdx = try Self.components(tcb, .tdxtcbcomponents) }
            } else {
                let flat = try level.superDecoder(forKey: .tcb).container(keyedBy: DynamicKey.self)
                sgx = try (1...16).map { index in
                    try flat.decode(
                        UInt8.self, forKey: DynamicKey(stringValue: String(format: "sgxtcbcomp%02dsvn", index)))
                }
            }
            levels.append(
                Level(sgxComponents: sgx, tdxComponents: tdx, pceSVN: pceSVN, status: status, advisoryIDs: advisories))
        }
        self.levels = levels
        tdxModule = try container.decodeIfPresent(ModuleIdentityJSON.self, forKey: .tdxModule)?.identity(id: "")
        tdxModuleIdentities = try
            (container.decodeIfPresent([ModuleIdentityJSON].self, forKey: .tdxModuleIdentities) ?? [])
            .map { try $0.identity(id: $0.id ?? "") }
    }

    private static func components(_ container: KeyedDecodingContainer<Keys>, _ key: Keys) throws -> [UInt8] {
        struct Component: Decodable { var svn: UInt8 }
        let components = try container.decode([Component].self, forKey: key).map(\.svn)
        guard components.count == 16 else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container, debugDescription: "expected 16 TCB components, got \(components.count)")
        }
        return components
    }

    private struct ModuleIdentityJSON: Decodable {
        struct LevelJSON: Decodable {
            struct TCB: Decodable { var isvsvn: UInt16 }
            var tcb: TCB
            var tcbStatus: String
            var advisoryIDs: [String]?
        }
        var id: String?
        var mrsigner: String
        var attributes: String
        var attributesMask: String
        var tcbLevels: [LevelJSON]?

        func identity(id: String) throws -> ModuleIdentity {
            guard let signer = CollateralHex.bytes(mrsigner), signer.count == 48,
                let attributes = CollateralHex.bytes(attributes), attributes.count == 8,
                let mask = CollateralHex.bytes(attributesMask), mask.count == 8
            else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: [], debugDescription: "malformed TDX module identity \(id)"))
            }
            return ModuleIdentity(
                id: id, mrSigner: signer, attributes: attributes, attributesMask: mask,
                levels: (tcbLevels ?? []).map {
                    ($0.tcb.isvsvn, TCBStatus(rawValue: $0.tcbStatus), $0.advisoryIDs ?? [])
                })
        }
    }
}

/// Intel's QE Identity (enclave identity version 2): what the quoting enclave must be.
public struct EnclaveIdentity: Sendable, Hashable, Decodable {
    public struct Level: Sendable, Hashable, Decodable {
        struct TCB: Decodable, Hashable { var isvsvn: UInt16 }
        var tcb: TCB
        public var isvSVN: UInt16 { tcb.isvsvn }
        public var tcbStatus: TCBStatus
        public var advisoryIDs: [String]?
    }

    /// "QE", "TD_QE" (absent in older versions).
    public var id: String?
    public var version: Int
    public var issueDate: Date
    public var nextUpdate: Date
    /// MISCSELECT as the report's bytes (Intel writes them in report order).
    public var miscSelect: [UInt8]
    public var miscSelectMask: [UInt8]
    public var attributes: [UInt8]
    public var attributesMask: [UInt8]
    public var mrSigner: [UInt8]
    public var isvProdID: UInt16
    public var levels: [Level]

    private enum Keys: String, CodingKey {
        case id, version, issueDate, nextUpdate, miscselect, miscselectMask, attributes, attributesMask, mrsigner,
            isvprodid, tcbLevels
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        id = try container.decodeIfPresent(String.self, forKey: .id)
        version = try container.decode(Int.self, forKey: .version)
        issueDate = try CollateralDate.decode(container, .issueDate)
        nextUpdate = try CollateralDate.decode(container, .nextUpdate)
        miscSelect = try CollateralHex.decode(container, .miscselect, length: 4)
        miscSelectMask = try CollateralHex.decode(container, .miscselectMask, length: 4)
        attributes = try CollateralHex.decode(container, .attributes, length: 16)
        attributesMask = try CollateralHex.decode(container, .attributesMask, length: 16)
        mrSigner = try CollateralHex.decode(container, .mrsigner, length: 32)
        isvProdID = try container.decode(UInt16.self, forKey: .isvprodid)
        levels = try container.decode([Level].self, forKey: .tcbLevels)
    }
}

enum CollateralDate {
    static func decode<K: CodingKey>(_ container: KeyedDecodingContainer<K>, _ key: K) throws -> Date {
        let text = try container.decode(String.self, forKey: key)
        guard let date = parse(text) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container, debugDescription: "not an RFC 3339 time: \(text)")
        }
        return date
    }

    static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

enum CollateralHex {
    static func decode<K: CodingKey>(_ container: KeyedDecodingContainer<K>, _ key: K, length: Int) throws -> [UInt8] {
        let text = try container.decode(String.self, forKey: key)
        guard let bytes = bytes(text), bytes.count == length else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container, debugDescription: "expected \(length * 2) hex digits")
        }
        return bytes
    }

    static func bytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            result.append(high << 4 | low)
            index += 2
        }
        return result
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
