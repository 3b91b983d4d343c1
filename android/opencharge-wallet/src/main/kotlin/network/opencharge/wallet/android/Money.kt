// Money.kt: exact decimal and locale formatting of the core's `Money` record (pure JVM, no
// android.*): BigDecimal from the signed decimal string, java.text currency formatting.
package network.opencharge.wallet.android

import java.math.BigDecimal
import java.text.NumberFormat
import java.util.Currency
import java.util.Locale
import network.opencharge.wallet.Money

/**
 * The exact amount as a [BigDecimal], parsed from [Money.amount] (the decimal string the
 * merchant signed, e.g. `"25.00"`): never a `Double`, so no cent is ever lost or invented.
 *
 * Throws [NumberFormatException] if `amount` is not a decimal number, which never happens for a
 * `Money` the core returned.
 */
fun Money.toBigDecimal(): BigDecimal = BigDecimal(amount)

/**
 * The amount formatted for a person in [locale], with the currency's symbol or code:
 * `"$25.00"` in `en-US`, `"25,00 $"` in `de-DE`, `"¥2,500"` for JPY, `"BHD1.234"` for the
 * three-digit Bahraini dinar. Exact: formats [toBigDecimal] with [Money.exponent] fraction
 * digits (more only if the amount has more, never rounded).
 *
 * A currency code the platform does not know is written after the number (`"1.00 XTS"`).
 */
fun Money.format(locale: Locale = Locale.getDefault()): String {
    val value = toBigDecimal()
    val digits = maxOf(exponent, value.scale(), 0)
    val known = runCatching { Currency.getInstance(currency) }.getOrNull()
    val format = if (known != null) {
        NumberFormat.getCurrencyInstance(locale).also { it.currency = known }
    } else {
        NumberFormat.getNumberInstance(locale)
    }
    format.minimumFractionDigits = maxOf(exponent, 0)
    format.maximumFractionDigits = digits
    val text = format.format(value)
    return if (known != null) text else "$text $currency"
}
