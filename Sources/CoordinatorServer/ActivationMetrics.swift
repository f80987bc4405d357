import Metrics
import Synchronization

/// The mesh API's activation counters, labelled by marble type. Only the manifest's marble types
/// become labels (anything a client sends otherwise is ``otherLabel``), so no client can grow the
/// metrics registry; and each of the manifest's types has its counters from the moment the
/// manifest is known, at 0, so dashboards show 0 rather than no data.
final class ActivationMetrics: Sendable {
    static let attempts = "coordinator_activations_total"
    static let successes = "coordinator_activations_success_total"
    /// The label of every marble type the manifest does not have.
    static let otherLabel = "unknown"

    private let known = Mutex<Set<String>>([])

    /// Creates the counters of marble types not seen before (they start at 0).
    func prepare(_ types: Set<String>) {
        let new = known.withLock { known -> Set<String> in
            let new = types.subtracting(known)
            known.formUnion(new)
            return new
        }
        for type in new {
            Counter(label: Self.attempts, dimensions: [("marble_type", type)]).increment(by: 0)
            Counter(label: Self.successes, dimensions: [("marble_type", type)]).increment(by: 0)
        }
    }
}
