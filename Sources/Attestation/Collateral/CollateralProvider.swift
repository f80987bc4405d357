import Foundation

/// Supplies the collateral a quote needs. Implementations: ``FileCollateralProvider`` here; an
/// HTTPS provider for a PCCS or Intel PCS belongs in a module of its own (it needs an HTTP client).
public protocol CollateralProvider: Sendable {
    func collateral(for quote: Quote) async throws(AttestationError) -> Collateral
}

/// Collateral read from a file: a dcap-qvl JSON bundle, or a folder in Intel PCS layout. The
/// same collateral serves every quote (one platform family, as in tests and air-gapped setups).
public struct FileCollateralProvider: CollateralProvider {
    public let location: URL

    public init(location: URL) {
        self.location = location
    }

    public func collateral(for quote: Quote) async throws(AttestationError) -> Collateral {
        try load()
    }

    /// Reads the collateral now (a folder as PCS layout, a file as a dcap-qvl bundle).
    public func load() throws(AttestationError) -> Collateral {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location.path, isDirectory: &isDirectory) else {
            throw AttestationError(.malformedCollateral, "no collateral at \(location.path)")
        }
        if isDirectory.boolValue { return try Collateral(pcsDirectory: location) }
        do {
            return try Collateral(dcapQVLBundle: Array(Data(contentsOf: location)))
        } catch let error as AttestationError {
            throw error
        } catch {
            throw AttestationError(.malformedCollateral, "cannot read \(location.path): \(error.localizedDescription)")
        }
    }
}

/// The same collateral for every quote (a simulated platform, tests, fixed deployments), with
/// TDX collateral of its own for TDX quotes when given.
public struct StaticCollateralProvider: CollateralProvider {
    public let collateral: Collateral
    public let tdxCollateral: Collateral?

    public init(_ collateral: Collateral, tdx: Collateral? = nil) {
        self.collateral = collateral
        self.tdxCollateral = tdx
    }

    public func collateral(for quote: Quote) async throws(AttestationError) -> Collateral {
        quote.isTDX ? tdxCollateral ?? collateral : collateral
    }
}
