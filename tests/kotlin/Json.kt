// Minimal JSON for the binding tests: parses the sandbox's line and the dev endpoints' answers
// into Map/List/String/BigDecimal/Boolean/null, and writes request bodies (no extra jars exist).
package network.opencharge.wallet.test

import java.math.BigDecimal

/** Parses and writes JSON text. Numbers are exact [BigDecimal]s, never floating point. */
object Json {
    /** Parses one JSON document; trailing non-space text is an error. */
    fun parse(text: String): Any? {
        val reader = Reader(text)
        val value = reader.value()
        reader.skipSpace()
        if (reader.pos != text.length) reader.fail("trailing text")
        return value
    }

    /** Parses a JSON object. */
    @Suppress("UNCHECKED_CAST")
    fun obj(text: String): Map<String, Any?> =
        parse(text) as? Map<String, Any?> ?: throw IllegalArgumentException("not a JSON object: $text")

    /** Writes `value` (Map, List, String, Number, Boolean, null) as compact JSON. */
    fun write(value: Any?): String = StringBuilder().also { write(value, it) }.toString()

    private fun write(value: Any?, out: StringBuilder) {
        when (value) {
            null -> out.append("null")
            is String -> quote(value, out)
            is Boolean -> out.append(value)
            is BigDecimal -> out.append(value.toPlainString())
            is Int, is Long, is Short, is Byte -> out.append(value)
            is UInt, is ULong -> out.append(value)
            is Map<*, *> -> {
                out.append('{')
                value.entries.forEachIndexed { i, (k, v) ->
                    if (i > 0) out.append(',')
                    quote(k as String, out)
                    out.append(':')
                    write(v, out)
                }
                out.append('}')
            }
            is List<*> -> {
                out.append('[')
                value.forEachIndexed { i, v ->
                    if (i > 0) out.append(',')
                    write(v, out)
                }
                out.append(']')
            }
            else -> throw IllegalArgumentException("cannot write ${value::class} as JSON")
        }
    }

    private fun quote(s: String, out: StringBuilder) {
        out.append('"')
        for (c in s) {
            when {
                c == '"' -> out.append("\\\"")
                c == '\\' -> out.append("\\\\")
                c == '\n' -> out.append("\\n")
                c == '\r' -> out.append("\\r")
                c == '\t' -> out.append("\\t")
                c < ' ' -> out.append(String.format("\\u%04x", c.code))
                else -> out.append(c)
            }
        }
        out.append('"')
    }

    private class Reader(val text: String) {
        var pos = 0

        fun fail(what: String): Nothing =
            throw IllegalArgumentException("JSON: $what at offset $pos in: ${text.take(200)}")

        fun skipSpace() {
            while (pos < text.length && text[pos] in " \t\r\n") pos++
        }

        fun value(): Any? {
            skipSpace()
            if (pos >= text.length) fail("unexpected end")
            return when (val c = text[pos]) {
                '{' -> obj()
                '[' -> array()
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (c == '-' || c.isDigit()) number() else fail("unexpected '$c'")
            }
        }

        fun literal(word: String, value: Any?): Any? {
            if (!text.startsWith(word, pos)) fail("expected $word")
            pos += word.length
            return value
        }

        fun number(): BigDecimal {
            val start = pos
            while (pos < text.length && (text[pos].isDigit() || text[pos] in "+-.eE")) pos++
            return text.substring(start, pos).toBigDecimalOrNull() ?: fail("bad number")
        }

        fun string(): String {
            pos++ // opening quote
            val out = StringBuilder()
            while (true) {
                if (pos >= text.length) fail("unterminated string")
                val c = text[pos++]
                when (c) {
                    '"' -> return out.toString()
                    '\\' -> {
                        if (pos >= text.length) fail("bad escape")
                        when (val e = text[pos++]) {
                            '"', '\\', '/' -> out.append(e)
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000c')
                            'n' -> out.append('\n')
                            'r' -> out.append('\r')
                            't' -> out.append('\t')
                            'u' -> {
                                if (pos + 4 > text.length) fail("bad \\u escape")
                                out.append(text.substring(pos, pos + 4).toInt(16).toChar())
                                pos += 4
                            }
                            else -> fail("bad escape \\$e")
                        }
                    }
                    else -> out.append(c)
                }
            }
        }

        fun obj(): Map<String, Any?> {
            pos++ // {
            val out = LinkedHashMap<String, Any?>()
            skipSpace()
            if (pos < text.length && text[pos] == '}') {
                pos++
                return out
            }
            while (true) {
                skipSpace()
                if (pos >= text.length || text[pos] != '"') fail("expected a key")
                val key = string()
                skipSpace()
                if (pos >= text.length || text[pos] != ':') fail("expected ':'")
                pos++
                out[key] = value()
                skipSpace()
                when (if (pos < text.length) text[pos] else ' ') {
                    ',' -> pos++
                    '}' -> {
                        pos++
                        return out
                    }
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        fun array(): List<Any?> {
            pos++ // [
            val out = ArrayList<Any?>()
            skipSpace()
            if (pos < text.length && text[pos] == ']') {
                pos++
                return out
            }
            while (true) {
                out.add(value())
                skipSpace()
                when (if (pos < text.length) text[pos] else ' ') {
                    ',' -> pos++
                    ']' -> {
                        pos++
                        return out
                    }
                    else -> fail("expected ',' or ']'")
                }
            }
        }
    }
}

/** The string field `key` of a parsed object; fails the test when it is missing. */
fun Map<String, Any?>.str(key: String): String =
    this[key] as? String ?: throw AssertionError("expected a string '$key' in $this")

/** The nullable string field `key`. */
fun Map<String, Any?>.strOrNull(key: String): String? = this[key] as? String

/** The integer field `key`. */
fun Map<String, Any?>.long(key: String): Long =
    (this[key] as? BigDecimal)?.longValueExact() ?: throw AssertionError("expected a number '$key' in $this")
