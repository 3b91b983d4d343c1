// Money formatting on the JVM: exact amounts (BigDecimal, never floats) formatted per locale for
// currencies with 2, 0 and 3 minor digits, big amounts, negative amounts, unknown currencies.
package network.opencharge.wallet.android

import java.math.BigDecimal
import java.util.Locale
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import network.opencharge.wallet.Money
import org.junit.jupiter.api.Test

class MoneyTest {
    private val enUs = Locale.forLanguageTag("en-US")
    private val deDe = Locale.forLanguageTag("de-DE")

    /** The formatted text with the no-break spaces of the JDK's locale data as plain spaces. */
    private fun Money.shown(locale: Locale) = format(locale).replace('\u00a0', ' ').replace('\u202f', ' ')

    @Test
    fun `US dollars have two fraction digits in both locales`() {
        val money = Money(amount = "25.00", minorUnits = 2500L, currency = "USD", exponent = 2)
        assertEquals("$25.00", money.shown(enUs))
        assertEquals("25,00 $", money.shown(deDe))
    }

    @Test
    fun `yen have no fraction digits`() {
        val money = Money(amount = "2500", minorUnits = 2500L, currency = "JPY", exponent = 0)
        assertEquals("¥2,500", money.shown(enUs))
        assertEquals("2.500 ¥", money.shown(deDe))
    }

    @Test
    fun `Bahraini dinars keep all three fraction digits`() {
        val money = Money(amount = "1.234", minorUnits = 1234L, currency = "BHD", exponent = 3)
        assertEquals("BHD1.234", money.shown(enUs))
        assertEquals("1,234 BHD", money.shown(deDe))
        // The exponent of the money wins over the locale's habit: 5.000 BHD, not 5 BHD.
        val round = Money(amount = "5.000", minorUnits = 5000L, currency = "BHD", exponent = 3)
        assertEquals("5,000 BHD", round.shown(deDe))
    }

    @Test
    fun `the largest amount is exact to the last cent`() {
        // Long.MAX_VALUE minor units: a Double would round this to ...758.08 or worse.
        val money = Money(amount = "92233720368547758.07", minorUnits = Long.MAX_VALUE, currency = "USD", exponent = 2)
        assertEquals(BigDecimal("92233720368547758.07"), money.toBigDecimal())
        assertEquals(BigDecimal.valueOf(Long.MAX_VALUE, 2), money.toBigDecimal())
        assertEquals("$92,233,720,368,547,758.07", money.shown(enUs))
        assertEquals("92.233.720.368.547.758,07 $", money.shown(deDe))
    }

    @Test
    fun `negative amounts and trailing zeros survive`() {
        val refund = Money(amount = "-3.50", minorUnits = -350L, currency = "EUR", exponent = 2)
        assertEquals("-€3.50", refund.shown(enUs))
        assertEquals("-3,50 €", refund.shown(deDe))
        assertEquals(BigDecimal("-3.50"), refund.toBigDecimal())
        assertEquals(2, refund.toBigDecimal().scale())
    }

    @Test
    fun `an amount with more digits than the exponent is never rounded`() {
        val odd = Money(amount = "0.125", minorUnits = 12L, currency = "USD", exponent = 2)
        assertEquals("$0.125", odd.shown(enUs))
    }

    @Test
    fun `an unknown currency code is written after the number`() {
        val money = Money(amount = "1.00", minorUnits = 100L, currency = "XYZ", exponent = 2)
        assertEquals("1.00 XYZ", money.shown(enUs))
        assertEquals("1,00 XYZ", money.shown(deDe))
    }

    @Test
    fun `an amount that is not a number is refused, not guessed`() {
        val broken = Money(amount = "12,50", minorUnits = 1250L, currency = "USD", exponent = 2)
        assertFailsWith<NumberFormatException> { broken.toBigDecimal() }
        assertFailsWith<NumberFormatException> { broken.format(enUs) }
    }
}
