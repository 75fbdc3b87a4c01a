import Testing
import VernierCost
import VernierGraph
import VernierRuntime

/// An op is known in three places: its shape rule, its cost formula, its kernel. A kernel
/// without the other two would run ops that `summary` cannot explain.
struct OpCoverageTests {
    @Test func everyOpWithAKernelHasAShapeRuleAndACostFormula() {
        let withoutRule = KernelRegistry.supportedOps.filter { ShapeRules.rule(for: $0) == nil }
        let withoutFormula = KernelRegistry.supportedOps.filter { CostFormulas.formula(for: $0) == nil }
        #expect(withoutRule.isEmpty, "kernels without a shape rule: \(withoutRule)")
        #expect(withoutFormula.isEmpty, "kernels without a cost formula: \(withoutFormula)")
    }
}
