// PushTest: the FCM data map becomes exactly the JSON object the core's handlePush reads.
package network.opencharge.wallet.android

import kotlin.test.Test
import kotlin.test.assertEquals

class PushTest {
    @Test
    fun theDataMapIsTheWakeUpObject() {
        val data = mapOf("type" to "payment_request", "sessionId" to "0123abcd", "eventId" to "42")
        assertEquals(
            """{"eventId":"42","sessionId":"0123abcd","type":"payment_request"}""",
            pushPayloadJson(data),
        )
    }

    @Test
    fun valuesAreEscaped() {
        val data = mapOf("a\"b" to "line\nbreak \\ tab\t \u0001 é")
        assertEquals(
            """{"a\"b":"line\nbreak \\ tab\t \u0001 é"}""",
            pushPayloadJson(data),
        )
        assertEquals("{}", pushPayloadJson(emptyMap()))
    }
}
