import CoordinatorTesting
import Foundation
import JSONText
import Testing

@testable import CoordinatorServer
@testable import Manifest

/// The OpenAPI document is kept true by tests: the served JSON is the committed YAML, and its
/// operations are exactly the routes. (SchemathesisTests check the answers against it.)
@Suite struct OpenAPIDocumentTests {
    static let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    static func yamlDocument() throws -> JSONValue {
        let text = try String(
            contentsOf: TestData.packageRoot.appending(path: "docs/openapi.yaml"), encoding: .utf8)
        return try YAMLConverter().convert(text)
    }

    static func servedDocument() throws -> JSONValue {
        try JSONParser().parse(Array(OpenAPIDocument.json.utf8))
    }

    /// Each documented path with the methods it documents, upper case.
    static func operations(_ document: JSONValue) -> [String: Set<String>] {
        var operations: [String: Set<String>] = [:]
        for member in document["paths"]?.objectValue ?? [] {
            let documented = (member.value.objectValue ?? []).map(\.key).filter { Self.methods.contains($0) }
            operations[member.key] = Set(documented.map { $0.uppercased() })
        }
        return operations
    }

    @Test func theServedDocumentIsTheCommittedYAML() throws {
        let yaml = try Self.yamlDocument()
        let served = try Self.servedDocument()
        let difference = Self.firstDifference(yaml, served)
        #expect(
            difference == nil,
            "OpenAPIDocument.swift is not docs/openapi.yaml at \(difference ?? ""): run scripts/generate-openapi")
        #expect(served["openapi"]?.stringValue == "3.1.0")
    }

    /// Every route of the client API (both states) is documented with exactly its methods, and
    /// every documented operation is routed.
    @Test func everyRouteIsDocumentedAndEveryDocumentedOperationIsRouted() throws {
        var routed: [String: Set<String>] = [:]
        for (path, methods) in ClientAPI.allowedMethods { routed[path] = Set(methods.map(\.rawValue)) }
        // In recovery mode every other path answers 409; only the recovery paths are new.
        for path in RecoveryAPI.paths {
            routed[path] = Set((RecoveryAPI.allowedMethods[path] ?? []).map(\.rawValue))
        }
        let documented = Self.operations(try Self.servedDocument())
        #expect(!documented.isEmpty)
        for path in Set(routed.keys).union(documented.keys).sorted() {
            #expect(
                documented[path] == routed[path],
                "\(path): routed \(routed[path] ?? []), documented \(documented[path] ?? [])")
        }
    }

    /// Each operation has a unique id, a 200 answer and a JSend envelope on every answer but the
    /// document itself; every reference resolves.
    @Test func everyOperationIsCompleteAndEveryReferenceResolves() throws {
        let document = try Self.servedDocument()
        var ids: Set<String> = []
        for path in document["paths"]?.objectValue ?? [] {
            for operation in path.value.objectValue ?? [] where Self.methods.contains(operation.key) {
                let name = "\(operation.key.uppercased()) \(path.key)"
                let id = operation.value["operationId"]?.stringValue ?? ""
                #expect(!id.isEmpty && ids.insert(id).inserted, "\(name): operationId '\(id)' is missing or repeated")
                let responses = operation.value["responses"]?.objectValue ?? []
                #expect(responses.contains { $0.key == "200" }, "\(name) documents no 200")
                for response in responses where !(path.key == OpenAPIDocument.path && response.key == "200") {
                    let resolved = try Self.resolve(response.value, in: document)
                    let schema = try resolved["content"]?["application/json"]?["schema"].map {
                        try Self.resolve($0, in: document)
                    }
                    let required = schema?["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
                    #expect(required.contains("status"), "\(name) \(response.key) has no JSend envelope")
                }
            }
        }
        var unresolved: [String] = []
        func visit(_ value: JSONValue) {
            switch value {
            case .object(let members):
                for member in members {
                    if member.key == "$ref", let reference = member.value.stringValue,
                        (try? Self.resolve(.object([member]), in: document)) == nil
                    {
                        unresolved.append(reference)
                    }
                    visit(member.value)
                }
            case .array(let elements): elements.forEach(visit)
            default: break
            }
        }
        visit(document)
        #expect(unresolved.isEmpty, "unresolved references: \(unresolved)")
    }

    /// The JSON pointer of the first place where `a` and `b` differ, with both values there.
    static func firstDifference(_ a: JSONValue, _ b: JSONValue, at path: String = "") -> String? {
        switch (a, b) {
        case (.object(let left), .object(let right)):
            guard left.map(\.key) == right.map(\.key) else {
                return "\(path): members \(left.map(\.key)) against \(right.map(\.key))"
            }
            for (l, r) in zip(left, right) {
                if let found = firstDifference(l.value, r.value, at: "\(path)/\(l.key)") { return found }
            }
            return nil
        case (.array(let left), .array(let right)) where left.count == right.count:
            for (index, (l, r)) in zip(left, right).enumerated() {
                if let found = firstDifference(l, r, at: "\(path)/\(index)") { return found }
            }
            return nil
        default:
            return a == b
                ? nil
                : "\(path): \(String(decoding: a.serialized(), as: UTF8.self).prefix(200)) against \(String(decoding: b.serialized(), as: UTF8.self).prefix(200))"
        }
    }

    struct Unresolved: Error { var reference: String }

    /// Follows `$ref` (local JSON pointers only) until a value without one.
    static func resolve(_ value: JSONValue, in document: JSONValue) throws -> JSONValue {
        var value = value
        var hops = 0
        while let reference = value["$ref"]?.stringValue {
            hops += 1
            guard reference.hasPrefix("#/"), hops < 16 else { throw Unresolved(reference: reference) }
            var target = document
            for part in reference.dropFirst(2).split(separator: "/") {
                let key = part.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
                guard let next = target[key] else { throw Unresolved(reference: reference) }
                target = next
            }
            value = target
        }
        return value
    }
}
