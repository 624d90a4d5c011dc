import HTTPTypes
import Hummingbird
import Synchronization

/// The methods each route answers, so a known path asked with another method is a 405 with `Allow`
/// (the router itself only says 404 for both). Filled once the routes are registered: the
/// observation middleware has to be added before them, when the table cannot be known yet.
final class RouteMethods: Sendable {
    private let table = Mutex<[(pattern: [RouterPath.Element], methods: [String])]>([])

    func record(_ routes: [Router<BasicRequestContext>.RouteDescription]) {
        var table: [(pattern: [RouterPath.Element], methods: [String])] = []
        for route in routes {
            if let index = table.firstIndex(where: { $0.pattern == route.path.components }) {
                table[index].methods.append(route.method.rawValue)
            } else {
                table.append((route.path.components, [route.method.rawValue]))
            }
        }
        self.table.withLock { $0 = table }
    }

    /// The methods of the route whose pattern matches `path` (empty: no route has this path).
    func allowed(path: String) -> [String] {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        return table.withLock { table in
            table.first { entry in
                entry.pattern.count == components.count && zip(entry.pattern, components).allSatisfy { $0 ~= $1 }
            }?.methods.sorted() ?? []
        }
    }
}
