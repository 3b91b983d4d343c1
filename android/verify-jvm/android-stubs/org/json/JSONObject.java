// Signature stub of org.json.JSONObject as Android ships it (compile-time only, see ../../README.md).
package org.json;

public class JSONObject {
    public JSONObject(java.util.Map copyFrom) {
        throw new UnsupportedOperationException("stub");
    }
}
