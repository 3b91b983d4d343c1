// AndroidKeystoreKeyStore: the wallet core's DeviceKeyStore on Android. An AES-256-GCM key that never
// leaves the Android Keystore wraps the device secret; the wrapped secret lives in
// noBackupFilesDir (SealedSecretStore).
package network.opencharge.wallet.android

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import java.io.File
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import network.opencharge.wallet.DeviceKeyStore

/**
 * Keeps the device key the core hands over encrypted under an AES-256-GCM key of the Android
 * Keystore (hardware-backed where the device has it; the key material never enters the app's
 * memory). The encrypted secrets are files in [Context.getNoBackupFilesDir], so they are neither
 * backed up nor restored to another device, where the Keystore key would be missing anyway.
 * Pass it to `Wallet.open(config, AndroidKeystoreKeyStore(context))`.
 *
 * Every failure is thrown as `WalletException.KeyStorage`. If the Keystore key is lost (e.g. the
 * app's data was partly restored), loading fails that way: the app must wipe the wallet and
 * enroll the device again.
 */
class AndroidKeystoreKeyStore private constructor(store: SealedSecretStore) : DeviceKeyStore by store {
    /**
     * A store in `noBackupFilesDir/[directoryName]` wrapped by the Keystore key [keyAlias]
     * (created on first use).
     */
    constructor(
        context: Context,
        keyAlias: String = DEFAULT_KEY_ALIAS,
        directoryName: String = DEFAULT_DIRECTORY,
    ) : this(SealedSecretStore(File(context.noBackupFilesDir, directoryName), AndroidKeystoreCipher(keyAlias)))

    companion object {
        /** The Android Keystore alias of the wrapping key. */
        const val DEFAULT_KEY_ALIAS = "network.opencharge.wallet.wrapping-key"

        /** The directory under noBackupFilesDir holding the sealed secrets. */
        const val DEFAULT_DIRECTORY = "opencharge-wallet-keys"
    }
}

/** AES-256-GCM with a non-exportable key of the Android Keystore, created on first use. The
 *  Keystore picks each encryption's IV itself (randomized encryption is required). */
internal class AndroidKeystoreCipher(private val keyAlias: String) : SecretCipher {
    override fun seal(plaintext: ByteArray, aad: ByteArray): Sealed {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key())
        cipher.updateAAD(aad)
        val ciphertext = cipher.doFinal(plaintext)
        return Sealed(cipher.iv, ciphertext)
    }

    override fun open(sealed: Sealed, aad: ByteArray): ByteArray {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(TAG_BITS, sealed.iv))
        cipher.updateAAD(aad)
        return cipher.doFinal(sealed.ciphertext)
    }

    @Synchronized
    private fun key(): SecretKey {
        val keystore = java.security.KeyStore.getInstance(PROVIDER)
        keystore.load(null)
        (keystore.getKey(keyAlias, null) as? SecretKey)?.let { return it }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, PROVIDER)
        generator.init(
            KeyGenParameterSpec.Builder(keyAlias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .setRandomizedEncryptionRequired(true)
                .build(),
        )
        return generator.generateKey()
    }

    private companion object {
        const val PROVIDER = "AndroidKeyStore"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val TAG_BITS = 128
    }
}
