import Foundation
import JSONText

/// Intel's TCB Info (versions 2 and 3, SGX and TDX): the TCB levels of one FMSPC.
public struct TCBInfo: Sendable, Hashable {
    public struct Level: Sendable, Hashable {
        public var sgxComponents: [UInt8]
        public var tdxComponents: [UInt8]?
        public var pceSVN: UInt16
        public var status: TCBStatus
        public var advisoryIDs: [String]

        public init(
            sgxComponents: [UInt8], tdxComponents: [UInt8]?, pceSVN: UInt16, status: TCBStatus, advisoryIDs: [String]
        ) {
            self.sgxComponents = sgxComponents
            self.tdxComponents = tdxComponents
            self.pceSVN = pceSVN
            self.status = status
            self.advisoryIDs = advisoryIDs
        }
    }

    public struct ModuleLevel: Sendable, Hashable {
        public var isvSVN: UInt16
        public var status: TCBStatus
        public var advisoryIDs: [String]

        public init(isvSVN: UInt16, status: TCBStatus, advisoryIDs: [String]) {
            self.isvSVN = isvSVN
            self.status = status
            self.advisoryIDs = advisoryIDs
        }
    }

    public struct ModuleIdentity: Sendable, Hashable {
        public var id: String
        public var mrSigner: [UInt8]
        public var attributes: [UInt8]
        public var attributesMask: [UInt8]
        /// Highest first.
        public var levels: [ModuleLevel]
    }

    /// "SGX" or "TDX" (version 3); nil in version 2.
    public var id: String?
    public var version: Int
    /// How TCB components are compared; 0 (component by component) is the only type Intel defines.
    public var tcbType: Int?
    public var issueDate: Date
    public var nextUpdate: Date
    public var fmspc: [UInt8]
    public var pceID: [UInt8]
    public var levels: [Level]
    /// TDX only: the default module identity and those per major version.
    public var tdxModule: ModuleIdentity?
    public var tdxModuleIdentities: [ModuleIdentity]

    /// Reads the exact JSON text Intel signs (the value of `"tcbInfo"`). It is read in place
    /// (``JSONReader``): this runs for every quote verified without cached collateral.
    public init(jsonBytes: [UInt8]) throws(AttestationError) {
        var fields = TCBInfoFields()
        try CollateralObject.read(jsonBytes, document: "TCB Info") { reader, key in
            switch key {
            case "id": fields.id = try reader.string()
            case "version": fields.version = try reader.integer()
            case "tcbType": fields.tcbType = try reader.integer()
            case "issueDate": fields.issueDate = try reader.string()
            case "nextUpdate": fields.nextUpdate = try reader.string()
            case "fmspc": fields.fmspc = try reader.string()
            case "pceId": fields.pceID = try reader.string()
            case "tcbLevels":
                var levels: [Level] = []
                try reader.array { reader in levels.append(try Self.level(&reader)) }
                fields.levels = levels
            case "tdxModule": fields.tdxModule = try Self.moduleIdentity(&reader)
            case "tdxModuleIdentities":
                var identities: [ModuleIdentity] = []
                try reader.array { reader in identities.append(try Self.moduleIdentity(&reader)) }
                fields.tdxModuleIdentities = identities
            default: try reader.skip()
            }
        }
        func required<T>(_ value: T?, _ field: String) throws(AttestationError) -> T {
            guard let value else { throw AttestationError(.malformedCollateral, "the TCB Info lacks a valid \(field)") }
            return value
        }
        id = fields.id
        version = try required(fields.version, "version")
        tcbType = fields.tcbType
        issueDate = try required(fields.issueDate.flatMap(CollateralDate.parse), "issueDate")
        nextUpdate = try required(fields.nextUpdate.flatMap(CollateralDate.parse), "nextUpdate")
        fmspc = try required(fields.fmspc.flatMap(Hex.decode).flatMap { $0.count == 6 ? $0 : nil }, "fmspc")
        pceID = try required(fields.pceID.flatMap(Hex.decode).flatMap { $0.count == 2 ? $0 : nil }, "pceId")
        levels = try required(fields.levels, "tcbLevels")
        tdxModule = fields.tdxModule
        tdxModuleIdentities = fields.tdxModuleIdentities
    }

    private struct TCBInfoFields {
        var id: String?
        var version: Int?
        var tcbType: Int?
        var issueDate: String?
        var nextUpdate: String?
        var fmspc: String?
        var pceID: String?
        var levels: [Level]?
        var tdxModule: ModuleIdentity?
        var tdxModuleIdentities: [ModuleIdentity] = []
    }

    private struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    private static func level(_ reader: inout JSONReader) throws -> Level {
        var sgx: [UInt8]?
        var tdx: [UInt8]?
        var flat = [UInt8](repeating: 0, count: 16)
        var flatSeen = 0
        var pceSVN: UInt16?
        var status: String?
        var advisories: [String] = []
        try reader.object { reader, key in
            switch key {
            case "tcb":
                try reader.object { reader, key in
                    switch key {
                    case "sgxtcbcomponents": sgx = try components(&reader)
                    case "tdxtcbcomponents": tdx = try components(&reader)
                    case "pcesvn": pceSVN = try reader.integer()
                    default:
                        // Version 2: sgxtcbcomp01svn … sgxtcbcomp16svn.
                        if key.hasPrefix("sgxtcbcomp"), key.hasSuffix("svn"),
                            let index = Int(key.dropFirst(10).dropLast(3)),
                            (1...16).contains(index)
                        {
                            flat[index - 1] = try reader.integer()
                            flatSeen += 1
                        } else {
                            try reader.skip()
                        }
                    }
                }
            case "tcbStatus": status = try reader.string()
            case "advisoryIDs": try reader.array { reader in advisories.append(try reader.string()) }
            default: try reader.skip()
            }
        }
        if sgx == nil && flatSeen == 16 { sgx = flat }
        guard let sgx, let pceSVN, let status else {
            throw Malformed(description: "a TCB level lacks its SGX components, PCE SVN or status")
        }
        return Level(
            sgxComponents: sgx, tdxComponents: tdx, pceSVN: pceSVN, status: TCBStatus(rawValue: status),
            advisoryIDs: advisories)
    }

    private static func components(_ reader: inout JSONReader) throws -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(16)
        try reader.array { reader in
            var svn: UInt8?
            try reader.object { reader, key in
                if key == "svn" { svn = try reader.integer() } else { try reader.skip() }
            }
            guard let svn else { throw Malformed(description: "a TCB component lacks its svn") }
            result.append(svn)
        }
        guard result.count == 16 else {
            throw Malformed(description: "expected 16 TCB components, got \(result.count)")
        }
        return result
    }

    private static func moduleIdentity(_ reader: inout JSONReader) throws -> ModuleIdentity {
        var id = ""
        var signer: [UInt8]?
        var attributes: [UInt8]?
        var mask: [UInt8]?
        var levels: [ModuleLevel] = []
        try reader.object { reader, key in
            switch key {
            case "id": id = try reader.string()
            case "mrsigner": signer = Hex.decode(try reader.string())
            case "attributes": attributes = Hex.decode(try reader.string())
            case "attributesMask": mask = Hex.decode(try reader.string())
            case "tcbLevels":
                try reader.array { reader in
                    let level = try ISVLevel.read(&reader, in: "TDX module identity")
                    levels.append(
                        ModuleLevel(isvSVN: level.isvSVN, status: level.status, advisoryIDs: level.advisoryIDs))
                }
            default: try reader.skip()
            }
        }
        guard let signer, signer.count == 48, let attributes, attributes.count == 8, let mask, mask.count == 8 else {
            throw Malformed(
                description: "TDX module identity \(id) has a malformed mrsigner, attributes or attributesMask")
        }
        return ModuleIdentity(id: id, mrSigner: signer, attributes: attributes, attributesMask: mask, levels: levels)
    }
}

/// Intel's QE Identity (enclave identity version 2): what the quoting enclave must be.
public struct EnclaveIdentity: Sendable, Hashable {
    public struct Level: Sendable, Hashable {
        public var isvSVN: UInt16
        public var tcbStatus: TCBStatus
        public var advisoryIDs: [String]
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

    /// Reads the exact JSON text Intel signs (the value of `"enclaveIdentity"`).
    public init(jsonBytes: [UInt8]) throws(AttestationError) {
        var text: [String: String] = [:]
        var version: Int?
        var productID: UInt16?
        var levels: [Level]?
        try CollateralObject.read(jsonBytes, document: "QE Identity") { reader, key in
            switch key {
            case "id", "issueDate", "nextUpdate", "miscselect", "miscselectMask", "attributes", "attributesMask",
                "mrsigner":
                text[key] = try reader.string()
            case "version": version = try reader.integer()
            case "isvprodid": productID = try reader.integer()
            case "tcbLevels":
                var list: [Level] = []
                try reader.array { reader in
                    let level = try ISVLevel.read(&reader, in: "QE Identity")
                    list.append(
                        Level(isvSVN: level.isvSVN, tcbStatus: level.status, advisoryIDs: level.advisoryIDs))
                }
                levels = list
            default: try reader.skip()
            }
        }
        func hex(_ field: String, _ length: Int) throws(AttestationError) -> [UInt8] {
            guard let bytes = text[field].flatMap(Hex.decode), bytes.count == length else {
                throw AttestationError(
                    .malformedCollateral, "the QE Identity's \(field) is missing or not \(length * 2) hex digits")
            }
            return bytes
        }
        func date(_ field: String) throws(AttestationError) -> Date {
            guard let date = text[field].flatMap(CollateralDate.parse) else {
                throw AttestationError(
                    .malformedCollateral, "the QE Identity's \(field) is missing or not an RFC 3339 UTC time")
            }
            return date
        }
        guard let version, let productID, let levels else {
            throw AttestationError(.malformedCollateral, "the QE Identity lacks its version, isvprodid or tcbLevels")
        }
        id = text["id"]
        self.version = version
        issueDate = try date("issueDate")
        nextUpdate = try date("nextUpdate")
        miscSelect = try hex("miscselect", 4)
        miscSelectMask = try hex("miscselectMask", 4)
        attributes = try hex("attributes", 16)
        attributesMask = try hex("attributesMask", 16)
        mrSigner = try hex("mrsigner", 32)
        isvProdID = productID
        self.levels = levels
    }
}

/// A TCB level keyed by an ISVSVN, as QE Identity and TDX module identities list them.
struct ISVLevel {
    var isvSVN: UInt16
    var status: TCBStatus
    var advisoryIDs: [String]

    static func read(_ reader: inout JSONReader, in document: String) throws -> ISVLevel {
        var isvSVN: UInt16?
        var status: String?
        var advisories: [String] = []
        try reader.object { reader, key in
            switch key {
            case "tcb":
                try reader.object { reader, key in
                    if key == "isvsvn" { isvSVN = try reader.integer() } else { try reader.skip() }
                }
            case "tcbStatus": status = try reader.string()
            case "advisoryIDs": try reader.array { reader in advisories.append(try reader.string()) }
            default: try reader.skip()
            }
        }
        guard let isvSVN, let status else {
            throw AttestationError(.malformedCollateral, "a \(document) TCB level lacks isvsvn or tcbStatus")
        }
        return ISVLevel(isvSVN: isvSVN, status: TCBStatus(rawValue: status), advisoryIDs: advisories)
    }
}
