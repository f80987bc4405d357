import JSONText
import Yams

/// Converts a YAML document into the JSON value it stands for, as MarbleRun's CLI does
/// before it sends a YAML manifest.
///
/// Aliases are expanded, so the number of converted nodes is bounded: a "billion laughs"
/// document is refused instead of exhausting memory.
struct YAMLConverter {
    var maximumDepth = 64
    var maximumNodes = 200_000

    struct Failure: Error {
        var reason: String
    }

    func convert(_ text: String) throws(Failure) -> JSONValue {
        // Yams' composer recurses once per level: the depth is measured before it runs.
        if YAMLNesting.depth(of: text, stoppingAbove: maximumDepth) > maximumDepth {
            throw Failure(reason: "nesting deeper than \(maximumDepth) levels")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw Failure(reason: Self.describe(error))
        } catch {
            throw Failure(reason: "\(error)")
        }
        guard let node else { throw Failure(reason: "the document is empty") }
        var budget = maximumNodes
        return try convert(node, depth: 0, budget: &budget)
    }

    private func convert(_ node: Node, depth: Int, budget: inout Int) throws(Failure) -> JSONValue {
        budget -= 1
        if budget < 0 { throw Failure(reason: "more than \(maximumNodes) nodes (after expanding aliases)") }
        if depth > maximumDepth { throw Failure(reason: "nesting deeper than \(maximumDepth) levels") }
        switch node {
        case .scalar(let scalar):
            return try convert(scalar)
        case .sequence(let sequence):
            var elements: [JSONValue] = []
            for element in sequence {
                elements.append(try convert(element, depth: depth + 1, budget: &budget))
            }
            return .array(elements)
        case .mapping(let mapping):
            var members: [JSONMember] = []
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw Failure(reason: "a mapping key must be a plain value, not a collection")
                }
                members.append(JSONMember(keyScalar.string, try convert(value, depth: depth + 1, budget: &budget)))
            }
            return .object(members)
        }
    }

    private func convert(_ scalar: Node.Scalar) throws(Failure) -> JSONValue {
        // Only plain scalars are typed; a quoted "true" or "8080" stays a string, as in YAML.
        guard scalar.style == .plain else { return .string(scalar.string) }
        // The type is the one YAML's resolver gives the text; Yams' `int`/`float` accessors
        // alone would read the number at the end of "https://db:5432".
        let node = Node.scalar(scalar)
        switch node.tag.description {
        case Tag.Name.null.rawValue:
            return .null
        case Tag.Name.bool.rawValue:
            if let value = node.bool { return .bool(value) }
        case Tag.Name.int.rawValue:
            // YAML 1.1's base-60 integers ("190:20:30") stay text, as go-yaml keeps them; Yams
            // computes them without overflow checks and traps on a long one.
            if scalar.string.contains(":") { return .string(scalar.string) }
            if let value = node.int { return .number(String(value)) }
            // Beyond Int (a UInt64 maximum, say): decimal digits are a JSON number as they stand.
            let text = scalar.string
            let unsigned = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
            if unsigned.first != "0", !unsigned.isEmpty, unsigned.allSatisfy({ ("0"..."9").contains($0) }) {
                return .number((text.first == "-" ? "-" : "") + unsigned)
            }
        case Tag.Name.float.rawValue:
            if let value = node.float {
                guard value.isFinite else {
                    throw Failure(reason: "'\(scalar.string.prefix(40))' has no JSON representation")
                }
                return .number(value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)")
            }
        default:
            break
        }
        return .string(scalar.string)
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let prefix = context.map { "\($0.text) " } ?? ""
            return "line \(mark.line), column \(mark.column): \(prefix)\(problem)"
        default:
            return "\(error)"
        }
    }
}
