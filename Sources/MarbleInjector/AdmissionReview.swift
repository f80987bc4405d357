import Foundation
import JSONText

/// An `admission.k8s.io/v1` AdmissionReview request as the API server sends it, and the
/// review it expects back.
public struct AdmissionReview: Sendable {
    public var uid: String
    public var kind: String
    public var namespace: String
    public var object: JSONValue
    /// `metadata.name`, or `generateName` for a pod a controller creates (for logs).
    public var objectName: String

    /// Admission reviews are a few KiB; Kubernetes objects stay below 1.5 MiB.
    public static let maximumSize = 3 << 20

    public struct Malformed: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    public init(parsing bytes: [UInt8]) throws(Malformed) {
        guard bytes.count <= Self.maximumSize else {
            throw Malformed(description: "the AdmissionReview has \(bytes.count) bytes, more than \(Self.maximumSize)")
        }
        let review: JSONValue
        do {
            review = try JSONParser(maximumDepth: 128).parse(bytes)
        } catch {
            throw Malformed(description: "the body is not JSON: \(error)")
        }
        guard review["apiVersion"]?.stringValue == "admission.k8s.io/v1",
            review["kind"]?.stringValue == "AdmissionReview"
        else {
            throw Malformed(description: "the body is not an admission.k8s.io/v1 AdmissionReview")
        }
        guard let request = review["request"], request.objectValue != nil else {
            throw Malformed(description: "the AdmissionReview has no request")
        }
        guard let uid = request["uid"]?.stringValue, !uid.isEmpty else {
            throw Malformed(description: "the AdmissionReview request has no uid")
        }
        guard let object = request["object"], object.objectValue != nil else {
            throw Malformed(description: "the AdmissionReview request has no object")
        }
        self.uid = uid
        kind = request["kind"]?["kind"]?.stringValue ?? object["kind"]?.stringValue ?? ""
        namespace = request["namespace"]?.stringValue ?? ""
        self.object = object
        let metadata = object["metadata"]
        objectName =
            metadata?["name"]?.stringValue ?? metadata?["generateName"]?.stringValue.map { $0 + "…" } ?? "(unnamed)"
    }

    /// The review to answer with: allowed with the patch (base64 JSON Patch), or denied with the reason.
    public func response(_ decision: PodMutator.Decision) -> [UInt8] {
        var response = [JSONMember("uid", .string(uid))]
        switch decision {
        case .allowed(let patch, let message):
            response.append(JSONMember("allowed", .bool(true)))
            if !patch.isEmpty {
                response.append(JSONMember("patchType", .string("JSONPatch")))
                response.append(JSONMember("patch", .string(Data(patch.serialized).base64EncodedString())))
            }
            response.append(
                JSONMember(
                    "status",
                    .object([JSONMember("status", .string("Success")), JSONMember("message", .string(message))])))
        case .denied(let reason):
            response.append(JSONMember("allowed", .bool(false)))
            response.append(
                JSONMember(
                    "status",
                    .object([
                        JSONMember("status", .string("Failure")), JSONMember("message", .string(reason)),
                        JSONMember("code", .number("403")),
                    ])))
        }
        return JSONValue.object([
            JSONMember("apiVersion", .string("admission.k8s.io/v1")), JSONMember("kind", .string("AdmissionReview")),
            JSONMember("response", .object(response)),
        ]).serialized()
    }
}
