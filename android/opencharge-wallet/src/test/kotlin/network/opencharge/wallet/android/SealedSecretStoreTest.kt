// SealedSecretStore on the JVM with real AES-256-GCM: round trip, replace, delete, the file
// format, alias rules, and tampered, moved or foreign files failing as WalletException.KeyStorage.
package network.opencharge.wallet.android

import java.io.File
import java.nio.file.Files
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import network.opencharge.wallet.WalletException
import org.junit.After
import org.junit.Test

class SealedSecretStoreTest {
    private val dir: File = Files.createTempDirectory("sealed-store-test").toFile()
    private val secret = ByteArray(32) { it.toByte() }

    @After
    fun cleanUp() {
        dir.deleteRecursively()
    }

    @Test
    fun storeLoadReplaceDeleteRoundTrip() {
        val store = SealedSecretStore(File(dir, "keys"), JvmAesGcmCipher())
        assertNull(store.load("device-key"))
        store.store("device-key", secret)
        assertContentEquals(secret, store.load("device-key"))
        val next = ByteArray(32) { (255 - it).toByte() }
        store.store("device-key", next)
        assertContentEquals(next, store.load("device-key"), "store replaces")
        assertNull(store.load("device-key-next"), "aliases are separate files")
        store.delete("device-key")
        assertNull(store.load("device-key"))
        store.delete("device-key") // deleting a missing alias is not an error
        assertEquals(emptyList(), File(dir, "keys").list()!!.toList(), "no temporary file is left")
    }

    @Test
    fun theFileHoldsOnlyCiphertextInTheDocumentedFormat() {
        val store = SealedSecretStore(dir, JvmAesGcmCipher())
        store.store("device-key", secret)
        val bytes = store.fileOf("device-key").readBytes()
        assertContentEquals("OCWK".toByteArray(), bytes.copyOfRange(0, 4))
        assertEquals(1, bytes[4].toInt(), "version")
        assertEquals(12, bytes[5].toInt(), "IV length")
        assertEquals(6 + 12 + 32 + 16, bytes.size, "header, IV, ciphertext, GCM tag")
        assertFalse(bytes.toList().windowed(8).contains(secret.copyOfRange(0, 8).toList()), "no plaintext")
        store.store("device-key", secret)
        assertFalse(bytes.contentEquals(store.fileOf("device-key").readBytes()), "a fresh IV per store")
    }

    @Test
    fun aTamperedFileIsAKeyStorageError() {
        val store = SealedSecretStore(dir, JvmAesGcmCipher())
        store.store("device-key", secret)
        val file = store.fileOf("device-key")
        val bytes = file.readBytes()
        bytes[bytes.size - 1] = (bytes[bytes.size - 1].toInt() xor 1).toByte()
        file.writeBytes(bytes)
        val error = assertFailsWith<WalletException.KeyStorage> { store.load("device-key") }
        assertTrue("does not open" in error.toString(), error.toString())
    }

    @Test
    fun aFileCopiedToAnotherAliasDoesNotOpen() {
        val store = SealedSecretStore(dir, JvmAesGcmCipher())
        store.store("device-key", secret)
        store.fileOf("device-key").copyTo(store.fileOf("device-key-next"))
        assertFailsWith<WalletException.KeyStorage> { store.load("device-key-next") }
    }

    @Test
    fun anotherWrappingKeyCannotOpenTheFile() {
        SealedSecretStore(dir, JvmAesGcmCipher()).store("device-key", secret)
        val other = SealedSecretStore(dir, JvmAesGcmCipher())
        assertFailsWith<WalletException.KeyStorage> { other.load("device-key") }
    }

    @Test
    fun truncatedAndForeignFilesAreKeyStorageErrors() {
        val store = SealedSecretStore(dir, JvmAesGcmCipher())
        store.fileOf("device-key").writeBytes("OCWK".toByteArray())
        assertFailsWith<WalletException.KeyStorage> { store.load("device-key") }
        store.fileOf("device-key").writeBytes(ByteArray(64) { 7 })
        assertFailsWith<WalletException.KeyStorage> { store.load("device-key") }
    }

    @Test
    fun invalidAliasesAreKeyStorageErrors() {
        val store = SealedSecretStore(dir, JvmAesGcmCipher())
        for (alias in listOf("", "../x", "a/b", "x".repeat(65), "key with space")) {
            assertFailsWith<WalletException.KeyStorage>(alias) { store.load(alias) }
            assertFailsWith<WalletException.KeyStorage>(alias) { store.store(alias, secret) }
        }
    }

    @Test
    fun anUnwritableDirectoryIsAKeyStorageError() {
        val blocker = File(dir, "not-a-dir").apply { writeText("x") }
        val store = SealedSecretStore(File(blocker, "keys"), JvmAesGcmCipher())
        assertFailsWith<WalletException.KeyStorage> { store.store("device-key", secret) }
    }
}
