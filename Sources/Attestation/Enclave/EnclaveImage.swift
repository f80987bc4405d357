import Foundation

/// Where a signed enclave keeps its SIGSTRUCT: a Gramine `.sig` file (or an instance directory
/// holding one), an Occlum instance (`build/lib/libocclum-libos.signed.so`), an SGX SDK or Occlum
/// enclave (ELF section `.note.sgxmeta`), an EGo or Open Enclave binary (ELF section `.oeinfo`),
/// or a dump of such a section.
public enum EnclaveImage {
    /// Files larger than this are refused (enclave images are tens of MiB at most).
    static let maximumSize = 1 << 30

    /// The SIGSTRUCT of the enclave at `path`, and the file it was found in.
    public static func sigstruct(at path: String) throws(AttestationError) -> (Sigstruct, file: String) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw AttestationError(.policy, "cannot read \(path): it does not exist")
        }
        if isDirectory.boolValue {
            let occlum = (path as NSString).appendingPathComponent("build/lib/libocclum-libos.signed.so")
            let signatures = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter {
                $0.hasSuffix(".sig")
            }.sorted()
            let candidates =
                (FileManager.default.fileExists(atPath: occlum) ? [occlum] : [])
                + signatures.map { (path as NSString).appendingPathComponent($0) }
            guard let file = candidates.first else {
                throw AttestationError(
                    .policy,
                    "\(path) is neither a Gramine instance (no *.sig file) nor an Occlum instance (no build/lib/libocclum-libos.signed.so)"
                )
            }
            return try sigstruct(at: file)
        }
        return (try sigstruct(in: try read(path), named: path), path)
    }

    /// The SIGSTRUCT in the bytes of an enclave file: an ELF file's `.note.sgxmeta` or `.oeinfo`
    /// section, or anything else searched whole (a Gramine `.sig` file, a dumped section).
    /// `name` says in errors which file the bytes came from.
    public static func sigstruct(in bytes: [UInt8], named name: String) throws(AttestationError) -> Sigstruct {
        if bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]) {
            let sections = try ELFSections(bytes)
            for section in [".note.sgxmeta", ".oeinfo"] {
                guard let range = sections.range(of: section) else { continue }
                guard let found = Sigstruct.find(in: Array(bytes[range])) else {
                    throw AttestationError(
                        .policy, "\(name) has a \(section) section but no SIGSTRUCT in it: is the enclave signed?")
                }
                return found
            }
            throw AttestationError(
                .policy,
                "\(name) is an ELF file without .note.sgxmeta or .oeinfo: not an SGX SDK, Occlum, EGo or Open Enclave enclave (a simulated identity needs --simulation)"
            )
        }
        guard let found = Sigstruct.find(in: bytes) else {
            throw AttestationError(.policy, "\(name) holds no SIGSTRUCT (is it a Gramine .sig file?)")
        }
        return found
    }

    static func read(_ path: String) throws(AttestationError) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw AttestationError(.policy, "\(path) cannot be read")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maximumSize + 1) ?? Data()
        } catch {
            throw AttestationError(.policy, "\(path) cannot be read: \(error.localizedDescription)")
        }
        guard data.count <= maximumSize else {
            throw AttestationError(.policy, "\(path) is larger than \(maximumSize >> 20) MiB")
        }
        return Array(data)
    }
}

/// The named sections of a 64-bit little-endian ELF file, every offset checked against its size.
struct ELFSections {
    private var sections: [String: Range<Int>] = [:]

    init(_ bytes: [UInt8]) throws(AttestationError) {
        func fail(_ what: String) -> AttestationError {
            AttestationError(.malformedQuote, "a malformed ELF file: \(what)")
        }
        func integer(_ offset: Int, _ size: Int) throws(AttestationError) -> Int {
            guard offset >= 0, offset + size <= bytes.count else { throw fail("a field lies past the end") }
            let value = bytes[offset..<(offset + size)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard value <= UInt64(Int.max >> 1) else { throw fail("an offset out of range") }
            return Int(value)
        }
        guard bytes.count >= 64, bytes[4] == 2, bytes[5] == 1 else {
            throw fail("not a 64-bit little-endian ELF file (SGX enclaves are)")
        }
        let tableOffset = try integer(0x28, 8)
        let entrySize = try integer(0x3A, 2)
        let count = try integer(0x3C, 2)
        let namesIndex = try integer(0x3E, 2)
        guard count > 0 else { return }
        guard entrySize >= 64, namesIndex < count, tableOffset <= bytes.count,
            count * entrySize <= bytes.count - tableOffset
        else { throw fail("its section table does not fit the file") }
        func section(_ index: Int) throws(AttestationError) -> (name: Int, range: Range<Int>) {
            let base = tableOffset + index * entrySize
            let offset = try integer(base + 0x18, 8)
            let size = try integer(base + 0x20, 8)
            // SHT_NOBITS sections occupy no file bytes.
            let type = try integer(base + 4, 4)
            guard type != 8 else { return (try integer(base, 4), 0..<0) }
            guard offset <= bytes.count, size <= bytes.count - offset else {
                throw fail("section \(index) lies past the end of the file")
            }
            return (try integer(base, 4), offset..<(offset + size))
        }
        let names = try section(namesIndex).range
        for index in 0..<count {
            let (nameOffset, range) = try section(index)
            guard nameOffset < names.count else { throw fail("a section name lies outside the name table") }
            let start = names.lowerBound + nameOffset
            let end = bytes[start..<names.upperBound].firstIndex(of: 0) ?? names.upperBound
            let name = String(decoding: bytes[start..<end], as: UTF8.self)
            if sections[name] == nil { sections[name] = range }
        }
    }

    func range(of name: String) -> Range<Int>? { sections[name] }
}
