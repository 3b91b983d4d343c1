// JvmAesGcmCipher: the SecretCipher of the JVM tests. Real AES-256-GCM through javax.crypto with
// a key held in memory, where the app uses a key of the Android Keystore.
package network.opencharge.wallet.android

import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/** AES-256-GCM with a random 96-bit IV per encryption and a 128-bit tag. */
class JvmAesGcmCipher(private val key: SecretKey = newKey()) : SecretCipher {
    private val random = SecureRandom()

    override fun seal(plaintext: ByteArray, aad: ByteArray): Sealed {
        val iv = ByteArray(12).also { random.nextBytes(it) }
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key, GCMParameterSpec(128, iv))
        cipher.updateAAD(aad)
        return Sealed(iv, cipher.doFinal(plaintext))
    }

    override fun open(sealed: Sealed, aad: ByteArray): ByteArray {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, sealed.iv))
        cipher.updateAAD(aad)
        return cipher.doFinal(sealed.ciphertext)
    }

    companion object {
        /** A fresh random AES-256 key. */
        fun newKey(): SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
    }
}
