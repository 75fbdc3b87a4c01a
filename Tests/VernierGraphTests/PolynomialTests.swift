import Testing
@testable import VernierGraph

struct PolynomialTests {
    let seq = Dim.symbol("seq")
    let batch = Dim.symbol("batch")

    @Test func productsCollectLikeTermsRegardlessOfOrder() {
        #expect(batch * seq * .value(64) == .value(64) * seq * batch)
        #expect((seq + .value(1)) * (seq - .value(1)) == seq * seq - .value(1))
    }

    @Test func exactDivisionByAConstantAndByAMonomial() {
        let total = batch * seq * .value(768)
        #expect(total.exactlyDivided(by: .value(12)) == batch * seq * .value(64))
        #expect(total.exactlyDivided(by: batch * .value(12)) == seq * .value(64))
        #expect(total.exactlyDivided(by: .value(7)) == nil)
        #expect((seq + .value(1)).exactlyDivided(by: seq) == nil)
    }

    @Test func floorDivisionOfASymbolThatDoesNotDivideIsOpaque() {
        let half = (seq - .value(1)).floorDivided(by: .value(2))
        #expect(!half.isConstant)
        #expect(half.description.contains("seq"))
        #expect(Dim.value(7).floorDivided(by: .value(2)) == .value(3))
        #expect(Dim.value(-7).floorDivided(by: .value(2)) == .value(-4))
        #expect(Dim.value(7).ceilDivided(by: .value(2)) == .value(4))
    }

    @Test func bindingSymbolsEvaluates() {
        let macs = seq * seq * .value(3) + seq * .value(5) + .value(2)
        #expect(macs.substituting(["seq": 10]) == .value(352))
        #expect(macs.substituting(["other": 1]) == macs)
    }

    @Test func printsHighestDegreeFirst() {
        let p = Polynomial<Double>(symbol: "seq") * Polynomial(21.7) + Polynomial<Double>(symbol: "seq") * Polynomial<Double>(symbol: "seq") * Polynomial(0.8)
        #expect(p.description == "0.8*seq^2 + 21.7*seq")
        #expect((seq - .value(3)).description == "seq - 3")
    }

    @Test func integerOverflowSaturatesInsteadOfTrapping() {
        let huge = Dim.value(Int.max / 2)
        #expect((huge * .value(4)).intValue == Int.max)
        #expect((huge + huge + huge).intValue == Int.max)
        #expect([Dim.value(1 << 40), .value(1 << 40)].knownElementCount == nil)
    }
}
