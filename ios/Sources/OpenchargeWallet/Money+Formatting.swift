// Money+Formatting: the exact `Decimal` of the core's `Money` record and its locale formatting
// with `Decimal.FormatStyle.Currency` (never through floating point).

import Foundation

extension Money {
    /// The exact amount, parsed from `amount` (the decimal string the merchant signed, e.g.
    /// `"25.00"`), never through `Double`. Should `amount` not parse (it always does for a
    /// `Money` the core returned), the value is built from `minorUnits` and `exponent`, which
    /// is exact as well.
    public var decimal: Decimal {
        let posix = Locale(identifier: "en_US_POSIX")
        if amount.range(of: #"^-?[0-9]+(\.[0-9]+)?$"#, options: .regularExpression) != nil,
           let parsed = Decimal(string: amount, locale: posix) {
            return parsed
        }
        return Decimal(
            sign: minorUnits < 0 ? .minus : .plus,
            exponent: -Int(exponent),
            significand: Decimal(minorUnits.magnitude))
    }

    /// The amount formatted for a person in `locale`, with the currency's symbol or code:
    /// `"$25.00"` in `en_US`, `"25,00 $"` in `de_DE`, `"¥2,500"` for JPY, three fraction
    /// digits for BHD. Exact: `exponent` fraction digits (more only if the amount has more,
    /// never rounded).
    public func formatted(locale: Locale = .current) -> String {
        let minimum = max(Int(exponent), 0)
        let maximum = max(minimum, fractionDigits(of: amount))
        return decimal.formatted(
            .currency(code: currency)
                .locale(locale)
                .precision(.fractionLength(minimum...maximum)))
    }
}

/// The number of digits after the decimal point of a decimal string (`"0.125"` has 3).
private func fractionDigits(of amount: String) -> Int {
    guard let point = amount.firstIndex(of: ".") else {
        return 0
    }
    return amount.distance(from: amount.index(after: point), to: amount.endIndex)
}
