// SealedSecretStore: the wallet core's DeviceKeyStore as one encrypted file per alias (AES-GCM through
// a SecretCipher, the alias bound as associated data, written atomically). Plain Kotlin (no
// android.*): AndroidKeystoreKeyStore gives it an Android Keystore key; the JVM tests a
// javax.crypto key (android/verify-jvm.sh).
package network.opencharge.wallet.android

import java.io.ByteArrayOutputStream
import java.io.File
import java.io.FileOutputStream
import java.io.IOException
import java.security.GeneralSecurityException
import network.opencharge.wallet.DeviceKeyStore
import network.opencharge.wallet.WalletException

/** An IV and the AES-GCM ciphertext (tag included) it was encrypted with. */
class Sealed(val iv: ByteArray, val ciphertext: ByteArray)

/**
 * Authenticated encryption of small secrets under a key the platform protects (AES-256-GCM,
 * 128-bit tag). [seal] picks a fresh IV each time; [open] fails with a
 * [GeneralSecurityException] when the ciphertext, the IV or [aad] was changed, or the key is not
 * the one that sealed it.
 */
interface SecretCipher {
    /** Encrypts [plaintext], authenticating [aad] with it. */
    fun seal(plaintext: ByteArray, aad: ByteArray): Sealed

    /** Decrypts [sealed], checking it and [aad]. */
    fun open(sealed: Sealed, aad: ByteArray): ByteArray
}

/**
 * A [DeviceKeyStore] keeping each secret the core hands over in `<dir>/<alias>.sealed`, encrypted by
 * [cipher] with the alias as associated data (a file copied to another alias does not open).
 *
 * File format: `OCWK` (4 bytes), version 1 (1 byte), IV length (1 byte), IV, ciphertext with the
 * GCM tag. A store is written to a temporary file, synced, then renamed over the old one, so a
 * crash leaves the old or the new secret, never a torn one.
 *
 * Every failure (I/O, a tampered or foreign file, a lost wrapping key, a bad alias) is thrown as
 * [WalletException.KeyStorage], the error the core expects from a key store.
 */
class SealedSecretStore(private val dir: File, private val cipher: SecretCipher) : DeviceKeyStore {
    @Synchronized
    override fun load(alias: String): ByteArray? = guard("load", alias) {
        val file = fileOf(alias)
        if (!file.exists()) {
            null
        } else {
            cipher.open(decode(file.readBytes()), aad(alias))
        }
    }

    @Synchronized
    override fun store(alias: String, secret: ByteArray) = guard("store", alias) {
        val file = fileOf(alias)
        if (!dir.isDirectory && !dir.mkdirs()) {
            throw IOException("cannot create $dir")
        }
        writeAtomically(file, encode(cipher.seal(secret, aad(alias))))
    }

    @Synchronized
    override fun delete(alias: String) = guard("delete", alias) {
        val file = fileOf(alias)
        if (file.exists() && !file.delete()) {
            throw IOException("cannot delete $file")
        }
    }

    /** The file of [alias]; aliases follow the core's rule: 1 to 64 of `A-Z a-z 0-9 - _`. */
    fun fileOf(alias: String): File {
        if (!ALIAS.matches(alias)) {
            throw WalletException.KeyStorage("invalid key alias \"$alias\"")
        }
        return File(dir, "$alias.sealed")
    }

    private inline fun <T> guard(operation: String, alias: String, body: () -> T): T =
        try {
            body()
        } catch (e: WalletException) {
            throw e
        } catch (e: GeneralSecurityException) {
            throw WalletException.KeyStorage(
                "$operation $alias: the sealed key does not open (tampered, or the wrapping key " +
                    "changed): ${e.javaClass.simpleName}",
            )
        } catch (e: Exception) {
            throw WalletException.KeyStorage("$operation $alias: ${e.javaClass.simpleName}: ${e.message}")
        }

    companion object {
        private val ALIAS = Regex("[A-Za-z0-9_-]{1,64}")
        private val MAGIC = byteArrayOf('O'.code.toByte(), 'C'.code.toByte(), 'W'.code.toByte(), 'K'.code.toByte())
        private const val VERSION: Byte = 1

        /** The associated data binding a sealed secret to its alias. */
        fun aad(alias: String): ByteArray = "opencharge-wallet-key:v1:$alias".toByteArray(Charsets.UTF_8)

        /** The file bytes of [sealed]. */
        fun encode(sealed: Sealed): ByteArray {
            require(sealed.iv.size in 1..255) { "IV of ${sealed.iv.size} bytes" }
            val out = ByteArrayOutputStream()
            out.write(MAGIC)
            out.write(VERSION.toInt())
            out.write(sealed.iv.size)
            out.write(sealed.iv)
            out.write(sealed.ciphertext)
            return out.toByteArray()
        }

        /** Parses file bytes written by [encode]. */
        fun decode(bytes: ByteArray): Sealed {
            if (bytes.size < 6 || !bytes.copyOfRange(0, 4).contentEquals(MAGIC)) {
                throw IOException("not a sealed key file")
            }
            if (bytes[4] != VERSION) {
                throw IOException("sealed key file version ${bytes[4]} is not supported")
            }
            val ivLength = bytes[5].toInt() and 0xff
            if (ivLength == 0 || bytes.size < 6 + ivLength + 16) {
                throw IOException("truncated sealed key file")
            }
            return Sealed(bytes.copyOfRange(6, 6 + ivLength), bytes.copyOfRange(6 + ivLength, bytes.size))
        }

        private fun writeAtomically(target: File, bytes: ByteArray) {
            val temporary = File(target.parentFile, "${target.name}.tmp")
            try {
                FileOutputStream(temporary).use { out ->
                    out.write(bytes)
                    out.fd.sync()
                }
                if (!temporary.renameTo(target)) {
                    throw IOException("cannot rename $temporary to $target")
                }
            } finally {
                temporary.delete()
            }
        }
    }
}
