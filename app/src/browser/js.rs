//! The global scope, whichever it is: the page's `window` or the Web Worker's `self`. Timers,
//! clocks, `fetch` and WebCrypto are reached through it so the same code runs in both.

use super::Failure;
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// `globalThis`.
pub fn global() -> js_sys::Object {
    js_sys::global()
}

/// A property of the global scope, when present and not undefined.
pub fn global_property(name: &str) -> Option<JsValue> {
    Reflect::get(&global(), &JsValue::from_str(name))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

/// Milliseconds on the monotonic clock (`performance.now()`).
pub fn now_ms() -> f64 {
    global_property("performance")
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map_or_else(js_sys::Date::now, |p| p.now())
}

/// Wait `ms` milliseconds (`setTimeout`).
pub async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        if let Some(set_timeout) = global_property("setTimeout").and_then(|f| f.dyn_into::<Function>().ok()) {
            let _ = set_timeout.call2(&JsValue::NULL, &resolve, &JsValue::from(ms));
        } else {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// A JavaScript error or value as text for people.
pub fn describe(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// `fetch(request)` from whichever scope this is.
pub async fn fetch(request: &web_sys::Request) -> Result<web_sys::Response, Failure> {
    let fetch = global_property("fetch")
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| Failure::browser("this browser has no fetch"))?;
    let promise: Promise = fetch
        .call1(&global(), request)
        .map_err(|e| Failure::js(&e))?
        .dyn_into()
        .map_err(|_| Failure::browser("fetch did not return a promise"))?;
    let response = JsFuture::from(promise)
        .await
        .map_err(|e| Failure::browser(format!("the server cannot be reached: {}", describe(&e))))?;
    response
        .dyn_into()
        .map_err(|_| Failure::browser("fetch did not return a response"))
}

/// `crypto.subtle`, when this context has it (secure contexts only).
pub fn subtle() -> Option<web_sys::SubtleCrypto> {
    let crypto = global_property("crypto")?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).ok()?;
    if subtle.is_undefined() || subtle.is_null() {
        return None;
    }
    subtle.dyn_into().ok()
}

/// A copy of a JavaScript `ArrayBuffer` (or view) as bytes.
pub fn to_vec(buffer: &JsValue) -> Vec<u8> {
    js_sys::Uint8Array::new(buffer).to_vec()
}

/// Replace `out`'s bytes with a copy of a JavaScript `ArrayBuffer` (or view), in `out`'s own
/// allocation when it is large enough: no fresh buffer per chunk.
pub fn copy_into(buffer: &JsValue, out: &mut Vec<u8>) {
    let array = js_sys::Uint8Array::new(buffer);
    out.clear();
    out.resize(array.length() as usize, 0);
    array.copy_to(out);
}

/// Bytes as a fresh JavaScript `Uint8Array` (a copy, outside WebAssembly memory, safe to
/// transfer or keep across awaits).
pub fn to_array(bytes: &[u8]) -> js_sys::Uint8Array {
    js_sys::Uint8Array::from(bytes)
}

/// A plain object `{key: value, …}`: what pages, workers and ports post to each other.
pub fn message(fields: &[(&str, &JsValue)]) -> js_sys::Object {
    let object = js_sys::Object::new();
    for (key, value) in fields {
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object
}

/// `object[key]`, when present and not undefined.
pub fn field(object: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(object, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined())
}
