// Signature stub of android.security.keystore.KeyGenParameterSpec (compile-time only, see ../../../README.md).
package android.security.keystore;

public final class KeyGenParameterSpec implements java.security.spec.AlgorithmParameterSpec {
    private KeyGenParameterSpec() {
        throw new UnsupportedOperationException("stub");
    }

    public static final class Builder {
        public Builder(String keystoreAlias, int purposes) {
            throw new UnsupportedOperationException("stub");
        }

        public Builder setBlockModes(String... blockModes) {
            throw new UnsupportedOperationException("stub");
        }

        public Builder setEncryptionPaddings(String... paddings) {
            throw new UnsupportedOperationException("stub");
        }

        public Builder setKeySize(int keySize) {
            throw new UnsupportedOperationException("stub");
        }

        public Builder setRandomizedEncryptionRequired(boolean required) {
            throw new UnsupportedOperationException("stub");
        }

        public KeyGenParameterSpec build() {
            throw new UnsupportedOperationException("stub");
        }
    }
}
