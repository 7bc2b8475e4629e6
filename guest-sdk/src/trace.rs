//! Annotating the node's span and opening child spans; the host decides every parent.

use crate::bindings::kettle::node::trace as wit;

/// A value for a span attribute.
pub use wit::Value as AttributeValue;

impl From<&str> for AttributeValue {
    fn from(v: &str) -> Self {
        Self::Text(v.to_string())
    }
}
impl From<String> for AttributeValue {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<i64> for AttributeValue {
    fn from(v: i64) -> Self {
        Self::Integer(v)
    }
}
impl From<u32> for AttributeValue {
    fn from(v: u32) -> Self {
        Self::Integer(i64::from(v))
    }
}
impl From<f64> for AttributeValue {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}
impl From<bool> for AttributeValue {
    fn from(v: bool) -> Self {
        Self::Boolean(v)
    }
}

/// A span opened by this node; it ends when dropped.
#[must_use = "the span ends as soon as this value is dropped"]
pub struct Span(wit::Span);

impl Span {
    pub fn set_attribute(&self, key: &str, value: impl Into<AttributeValue>) {
        self.0.set_attribute(key, &value.into());
    }

    pub fn add_event(&self, name: &str) {
        self.0.add_event(name, &[]);
    }

    /// Marks the span as failed.
    pub fn set_error(&self, message: &str) {
        self.0.set_error(message);
    }

    /// Ends the span now (the same as dropping it).
    pub fn end(self) {}

    /// Keeps the span open past the end of the current scope; the host closes it
    /// (and marks it leaked) when the node returns.
    pub fn leak(self) {
        std::mem::forget(self);
    }
}

/// Opens a child span of this node's innermost open span.
pub fn span(name: &str) -> Span {
    Span(wit::start_span(name))
}

/// Sets an attribute on the node's own span.
pub fn set_attribute(key: &str, value: impl Into<AttributeValue>) {
    wit::set_attribute(key, &value.into());
}

/// Records an event on the node's own span.
pub fn add_event(name: &str) {
    wit::add_event(name, &[]);
}
