import Foundation
import Manifest

/// Reads a manifest file with the size limit applied before the bytes are loaded.
enum ManifestFile {
    struct ReadError: Error, CustomStringConvertible {
        var description: String
    }

    static func read(_ path: String, limit: Int) throws(ReadError) -> [UInt8] {
        let url = URL(fileURLWithPath: path)
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        } catch {
            throw ReadError(description: "cannot read \(path): no such file")
        }
        if let type = attributes[.type] as? FileAttributeType, type == .typeDirectory {
            throw ReadError(description: "cannot read \(path): it is a directory")
        }
        if let size = attributes[.size] as? NSNumber, size.intValue > limit {
            throw ReadError(description: "\(path) is \(size.intValue) bytes; a manifest may have at most \(limit)")
        }
        do {
            let data = try Data(contentsOf: url)
            guard data.count <= limit else {
                throw ReadError(description: "\(path) is \(data.count) bytes; a manifest may have at most \(limit)")
            }
            return Array(data)
        } catch let error as ReadError {
            throw error
        } catch {
            throw ReadError(description: "cannot read \(path): \(error.localizedDescription)")
        }
    }
}
