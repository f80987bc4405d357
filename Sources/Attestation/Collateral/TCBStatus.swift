/// A TCB status as Intel's TCB Info and QE Identity name them, plus the two TD relaunch
/// statuses Intel's library derives for TD 1.5 reports.
public struct TCBStatus: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let upToDate = Self(rawValue: "UpToDate")
    public static let swHardeningNeeded = Self(rawValue: "SWHardeningNeeded")
    public static let configurationNeeded = Self(rawValue: "ConfigurationNeeded")
    public static let configurationAndSWHardeningNeeded = Self(rawValue: "ConfigurationAndSWHardeningNeeded")
    public static let outOfDate = Self(rawValue: "OutOfDate")
    public static let outOfDateConfigurationNeeded = Self(rawValue: "OutOfDateConfigurationNeeded")
    public static let revoked = Self(rawValue: "Revoked")
    public static let tdRelaunchAdvised = Self(rawValue: "TDRelaunchAdvised")
    public static let tdRelaunchAdvisedConfigurationNeeded = Self(rawValue: "TDRelaunchAdvisedConfigurationNeeded")

    /// Statuses a platform TCB level may carry.
    static let platformStatuses: Set<TCBStatus> = [
        .upToDate, .swHardeningNeeded, .configurationNeeded, .configurationAndSWHardeningNeeded, .outOfDate,
        .outOfDateConfigurationNeeded, .revoked,
    ]
    /// Statuses a QE identity level may carry.
    static let qeStatuses: Set<TCBStatus> = [
        .upToDate, .outOfDate, .configurationNeeded, .revoked, .outOfDateConfigurationNeeded,
    ]
    /// Statuses a TDX module identity level may carry.
    static let tdxModuleStatuses: Set<TCBStatus> = [.upToDate, .outOfDate, .revoked]

    /// Intel's convergence: an out-of-date component makes an up-to-date platform out of date
    /// (keeping "configuration needed"), a revoked component revokes it; others change nothing.
    static func converge(platform: TCBStatus, components: [TCBStatus]) -> TCBStatus {
        var status = platform
        if components.contains(.outOfDate) {
            if platform == .upToDate || platform == .swHardeningNeeded { status = .outOfDate }
            if platform == .configurationNeeded || platform == .configurationAndSWHardeningNeeded {
                status = .outOfDateConfigurationNeeded
            }
        }
        if components.contains(.revoked) { status = .revoked }
        return status
    }

    /// Intel's relaunch check for TD 1.5: the TD launched under an out-of-date module that is now current.
    static func relaunch(launch: TCBStatus, current: TCBStatus) -> TCBStatus {
        let launchOutOfDate = launch == .outOfDate || launch == .outOfDateConfigurationNeeded
        let currentFine = [
            TCBStatus.upToDate, .swHardeningNeeded, .configurationNeeded, .configurationAndSWHardeningNeeded,
        ]
        .contains(current)
        guard launchOutOfDate && currentFine else { return launch }
        let configuration: Set<TCBStatus> = [
            .configurationNeeded, .outOfDateConfigurationNeeded, .configurationAndSWHardeningNeeded,
        ]
        return configuration.contains(launch) || configuration.contains(current)
            ? .tdRelaunchAdvisedConfigurationNeeded : .tdRelaunchAdvised
    }
}
