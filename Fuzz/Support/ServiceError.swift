// Stand-in for Sources/Service/ServiceError.swift in the fuzz build (scripts/build-fuzzer): the real
// enum imports Hummingbird for its HTTP statuses; the request-body parsers throw only these cases.
// A parser that starts throwing another case fails to compile here, which is the reminder to add it.
enum ServiceError: Error {
    case badRequest(String)
    case tooManyParts(limit: Int)
    case partHeadersTooLarge(part: Int, limit: Int)
}
