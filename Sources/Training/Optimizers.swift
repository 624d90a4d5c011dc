/// Limited-memory BFGS (Nocedal & Wright, "Numerical Optimization", 2nd ed., Algorithms 7.4 and 7.5)
/// with a backtracking Armijo line search. Full batch, deterministic: the right tool for a convex
/// linear head whose features fit in memory.
public struct LBFGS: Sendable {
    /// Correction pairs kept.
    public var memory = 10
    public var maxIterations = 500
    /// Stop when max |gradient| falls below this.
    public var gradientTolerance = 1e-5
    /// Stop when the loss improves by less than this (relative) in an iteration.
    public var relativeTolerance = 1e-9

    public init(maxIterations: Int = 500) { self.maxIterations = maxIterations }

    /// Minimizes `objective` (returns f and writes the gradient) from `start`. After each iteration
    /// `afterIteration(iteration, x, f)` may return false to stop (early stopping). Returns the last x.
    public func minimize(from start: [Float], objective: ([Float], inout [Float]) -> Double,
                         afterIteration: (Int, [Float], Double) -> Bool) -> [Float] {
        var x = start, gradient: [Float] = []
        var f = objective(x, &gradient)
        var s: [[Float]] = [], y: [[Float]] = [], rho: [Double] = []
        let n = x.count
        for iteration in 1...max(1, maxIterations) {
            if gradient.reduce(0, { max($0, abs(Double($1))) }) < gradientTolerance { break }
            // Two-loop recursion: direction = -H g.
            var q = gradient.map(Double.init)
            var alpha = [Double](repeating: 0, count: s.count)
            for i in stride(from: s.count - 1, through: 0, by: -1) {
                alpha[i] = rho[i] * dot(s[i], q)
                for j in 0..<n { q[j] -= alpha[i] * Double(y[i][j]) }
            }
            if let lastS = s.last, let lastY = y.last {
                let gamma = dot(lastS, lastY.map(Double.init)) / max(dot(lastY, lastY.map(Double.init)), 1e-300)
                for j in 0..<n { q[j] *= gamma }
            } else {
                // First step: unit length, so the line search starts at a sensible scale.
                let norm = q.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if norm > 0 { for j in 0..<n { q[j] /= norm } }
            }
            for i in 0..<s.count {
                let beta = rho[i] * dot(y[i], q)
                for j in 0..<n { q[j] += Double(s[i][j]) * (alpha[i] - beta) }
            }
            let direction = q.map { Float(-$0) }
            var slope = dot(direction, gradient.map(Double.init))
            var searchDirection = direction
            if !(slope < 0) {
                // Not a descent direction (numerical trouble): restart from steepest descent.
                s.removeAll(); y.removeAll(); rho.removeAll()
                searchDirection = gradient.map { -$0 }
                slope = -dot(gradient, gradient.map(Double.init))
            }
            var step: Float = 1, accepted = false
            var candidate = x, candidateGradient: [Float] = [], candidateF = f
            for _ in 0..<40 {
                for j in 0..<n { candidate[j] = x[j] + step * searchDirection[j] }
                candidateF = objective(candidate, &candidateGradient)
                if candidateF.isFinite && candidateF <= f + 1e-4 * Double(step) * slope {
                    accepted = true
                    break
                }
                step *= 0.5
            }
            guard accepted else { break }
            var sk = [Float](repeating: 0, count: n), yk = [Float](repeating: 0, count: n)
            for j in 0..<n {
                sk[j] = candidate[j] - x[j]
                yk[j] = candidateGradient[j] - gradient[j]
            }
            let sy = dot(sk, yk.map(Double.init))
            if sy > 1e-10 {
                s.append(sk); y.append(yk); rho.append(1 / sy)
                if s.count > memory { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
            }
            let improvement = f - candidateF
            x = candidate
            gradient = candidateGradient
            f = candidateF
            if !afterIteration(iteration, x, f) { break }
            if improvement <= relativeTolerance * max(abs(f), 1) { break }
        }
        return x
    }

    private func dot(_ a: [Float], _ b: [Double]) -> Double {
        var sum = 0.0
        for i in 0..<a.count { sum += Double(a[i]) * b[i] }
        return sum
    }
}

/// Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
/// ICLR 2019): the decay shrinks weights directly instead of entering the adaptive gradient scale.
public struct AdamW: Sendable {
    public var learningRate: Float
    public var weightDecay: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    private var m: [Float] = [], v: [Float] = [], t = 0

    public init(learningRate: Float, weightDecay: Float) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }

    /// One update. `decayed[i]` says whether parameter i gets weight decay (weights yes, biases no).
    public mutating func step(_ parameters: inout [Float], gradient: [Float], decayed: [Bool]) {
        if m.isEmpty {
            m = [Float](repeating: 0, count: parameters.count)
            v = m
        }
        t += 1
        precondition(gradient.count == parameters.count && decayed.count == parameters.count)
        let correction1 = 1 - powf(beta1, Float(t)), correction2 = 1 - powf(beta2, Float(t))
        let (beta1, beta2, epsilon, learningRate) = (beta1, beta2, epsilon, learningRate)
        let decay = learningRate * weightDecay
        // Raw buffers: a fine-tuned tail has about a million parameters, stepped every minibatch.
        parameters.withUnsafeMutableBufferPointer { p in
            m.withUnsafeMutableBufferPointer { m in
                v.withUnsafeMutableBufferPointer { v in
                    gradient.withUnsafeBufferPointer { g in
                        decayed.withUnsafeBufferPointer { decayed in
                            for i in 0..<p.count {
                                m[i] = beta1 * m[i] + (1 - beta1) * g[i]
                                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
                                let update = (m[i] / correction1) / ((v[i] / correction2).squareRoot() + epsilon)
                                if decayed[i] { p[i] -= decay * p[i] }
                                p[i] -= learningRate * update
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Stochastic gradient descent with (heavy-ball) momentum and decoupled weight decay. Its step is
/// proportional to the gradient, so fine-tuning from a probe that already fits the training rows
/// changes little, where Adam's normalized step would move every weight by about the learning rate
/// whatever the gradient (measured: it raised the validation loss in the first epoch on all three
/// development sets, BENCHMARKS.md "Partial fine-tuning").
public struct SGDMomentum: Sendable {
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    private var velocity: [Float] = []

    public init(learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    public mutating func step(_ parameters: inout [Float], gradient: [Float], decayed: [Bool]) {
        if velocity.isEmpty { velocity = [Float](repeating: 0, count: parameters.count) }
        for i in 0..<parameters.count {
            velocity[i] = momentum * velocity[i] + gradient[i]
            if decayed[i] { parameters[i] -= learningRate * weightDecay * parameters[i] }
            parameters[i] -= learningRate * velocity[i]
        }
    }
}

/// Linear warm-up to the peak learning rate, then cosine decay to zero (Loshchilov & Hutter 2017,
/// without restarts), over a fixed number of steps: the usual schedule for fine-tuning with AdamW.
public struct WarmupCosineSchedule: Sendable, Equatable {
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Float, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak
        self.warmupSteps = max(0, warmupSteps)
        self.totalSteps = max(1, totalSteps)
    }

    /// The learning rate of step `step` (0-based).
    public func learningRate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let decaySteps = max(1, totalSteps - warmupSteps)
        let progress = min(1, Float(step - warmupSteps) / Float(decaySteps))
        return peak * 0.5 * (1 + cosf(Float.pi * progress))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
