// Money formatting: exact `Decimal` from the signed string and currency formatting per locale
// for 2, 0 and 3 minor digits, the largest amount, negative amounts and unknown currencies.

import Foundation
import XCTest
import OpenchargeWallet

final class MoneyFormattingTests: XCTestCase {
    private let enUS = Locale(identifier: "en_US")
    private let deDE = Locale(identifier: "de_DE")

    /// The formatted text with no-break spaces as plain spaces (locale data uses them).
    private func shown(_ money: Money, _ locale: Locale) -> String {
        money.formatted(locale: locale)
            .replacingOccurrences(of: "\u{00a0}", with: " ")
            .replacingOccurrences(of: "\u{202f}", with: " ")
    }

    func testDollarsHaveTwoFractionDigits() {
        let money = Money(amount: "25.00", minorUnits: 2500, currency: "USD", exponent: 2)
        XCTAssertEqual(shown(money, enUS), "$25.00")
        XCTAssertEqual(shown(money, deDE), "25,00 $")
        XCTAssertEqual(money.decimal, Decimal(string: "25", locale: Locale(identifier: "en_US_POSIX")))
    }

    func testYenHaveNoFractionDigits() {
        let money = Money(amount: "2500", minorUnits: 2500, currency: "JPY", exponent: 0)
        XCTAssertEqual(shown(money, enUS), "¥2,500")
        XCTAssertEqual(shown(money, deDE), "2.500 ¥")
    }

    func testDinarsKeepThreeFractionDigits() {
        let money = Money(amount: "5.000", minorUnits: 5000, currency: "BHD", exponent: 3)
        XCTAssertTrue(shown(money, deDE).hasPrefix("5,000"), shown(money, deDE))
        XCTAssertTrue(shown(money, enUS).contains("5.000"), shown(money, enUS))
    }

    func testTheLargestAmountIsExact() {
        let money = Money(amount: "92233720368547758.07", minorUnits: Int64.max, currency: "USD", exponent: 2)
        XCTAssertEqual(money.decimal.description, "92233720368547758.07")
        XCTAssertEqual(shown(money, enUS), "$92,233,720,368,547,758.07")
    }

    func testNegativeAmountsStayExact() {
        let refund = Money(amount: "-3.50", minorUnits: -350, currency: "EUR", exponent: 2)
        XCTAssertEqual(refund.decimal.description, "-3.5")
        XCTAssertEqual(shown(refund, deDE), "-3,50 €")
    }

    func testAnUnparsableAmountFallsBackOnMinorUnits() {
        let odd = Money(amount: "12,50", minorUnits: 1250, currency: "USD", exponent: 2)
        XCTAssertEqual(odd.decimal.description, "12.5")
    }

    func testAnUnknownCurrencyIsShownByItsCode() {
        let money = Money(amount: "1.00", minorUnits: 100, currency: "XYZ", exponent: 2)
        XCTAssertTrue(shown(money, enUS).contains("XYZ"), shown(money, enUS))
        XCTAssertTrue(shown(money, enUS).contains("1.00"), shown(money, enUS))
    }
}
