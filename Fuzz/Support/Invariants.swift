// Shared by every fuzz target (compiled into each by scripts/build-fuzzer): a broken invariant is a
// crash, which libFuzzer records as a finding with the input that caused it.
import Foundation

/// Stops the run when `condition` fails: the parser accepted or produced something it must not.
@inline(__always)
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant: \(message())") }
}

/// The message a user would read for `error` (errors are shown to users, so computing one must work
/// for any input), which must name `name`, the input's file name.
func requireNamed(_ error: any Error, _ name: String) {
    let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
    require(message.contains(name), "the error does not name \(name): \(message)")
}
