// libyaml's event parser, as Yams bundles it: Yams has no public event API, and its composer
// recurses once per nesting level, so a hostile document must be measured before it is composed.
internal import CYaml

/// The nesting of collections in a YAML text, measured on libyaml's events. libyaml keeps its
/// parser state on the heap, so a document nested a million levels deep costs a loop, not a
/// stack.
enum YAMLNesting {
    /// The deepest nesting of sequences and mappings, counting stops once it passes `limit`.
    /// A syntax error ends the count where it is: Yams reports the error itself, and can only
    /// reach that point.
    static func depth(of text: String, stoppingAbove limit: Int) -> Int {
        var text = text
        return text.withUTF8 { buffer -> Int in
            guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return 0 }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, base, buffer.count)
            var depth = 0
            var deepest = 0
            var event = yaml_event_t()
            while yaml_parser_parse(&parser, &event) == 1 {
                let type = event.type
                yaml_event_delete(&event)
                switch type {
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    depth += 1
                    deepest = max(deepest, depth)
                    if deepest > limit { return deepest }
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    depth -= 1
                case YAML_STREAM_END_EVENT:
                    return deepest
                default:
                    break
                }
            }
            return deepest
        }
    }
}
