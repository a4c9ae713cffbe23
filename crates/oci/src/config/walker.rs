//! The object walker every section is read with: each object is taken
//! key by key, and a key left over at the end that the specification
//! defines is refused with its full path (`linux.intelRdt`), so nothing an
//! engine asks for is silently dropped. A key the specification does not
//! define is not an error (it says so); it is set aside and reported in
//! [`Container::ignored`](super::Container::ignored) for the log.

use serde_json::{Map, Value};

use crate::spec_fields;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config.json: {path}: {message}")]
    Field { path: String, message: String },
    #[error("config.json: {0}")]
    Syntax(String),
    #[error("{path}: {error}")]
    Read { path: String, error: std::io::Error },
}

pub(crate) fn field(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        path: path.to_string(),
        message: message.into(),
    }
}

/// An object being taken apart; leftover keys are sorted out by
/// [`Obj::finish`].
pub(crate) struct Obj {
    pub(crate) path: String,
    pub(crate) map: Map<String, Value>,
}

impl Obj {
    pub(crate) fn new(path: &str, value: Value) -> Result<Self, ConfigError> {
        match value {
            Value::Object(map) => Ok(Self {
                path: path.to_string(),
                map,
            }),
            _ => Err(field(path, "must be an object")),
        }
    }

    pub(crate) fn sub(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`, `None` when absent or null.
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    pub(crate) fn object(&mut self, key: &str) -> Result<Option<Obj>, ConfigError> {
        let path = self.sub(key);
        self.take(key).map(|v| Obj::new(&path, v)).transpose()
    }

    pub(crate) fn string(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(field(&path, "must be a string")),
        }
    }

    pub(crate) fn boolean(&mut self, key: &str) -> Result<bool, ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(field(&path, "must be true or false")),
        }
    }

    pub(crate) fn int(&mut self, key: &str) -> Result<Option<i64>, ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
                .map(Some)
                .ok_or_else(|| field(&path, "must be a whole number")),
            Some(_) => Err(field(&path, "must be a number")),
        }
    }

    pub(crate) fn uint(&mut self, key: &str) -> Result<Option<u64>, ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| field(&path, "must be a whole number of at least 0")),
            Some(_) => Err(field(&path, "must be a number")),
        }
    }

    pub(crate) fn array(&mut self, key: &str) -> Result<Vec<Value>, ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(field(&path, "must be an array")),
        }
    }

    pub(crate) fn strings(&mut self, key: &str) -> Result<Vec<String>, ConfigError> {
        let path = self.sub(key);
        self.array(key)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                _ => Err(field(&format!("{path}[{i}]"), "must be a string")),
            })
            .collect()
    }

    /// Refuses `key` when present and not empty.
    pub(crate) fn refuse(&mut self, key: &str, why: &str) -> Result<(), ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(()),
            Some(Value::String(s)) if s.is_empty() => Ok(()),
            Some(Value::Array(a)) if a.is_empty() => Ok(()),
            Some(Value::Object(o)) if o.is_empty() => Ok(()),
            Some(_) => Err(field(&path, why)),
        }
    }

    /// Accepts `key` whatever it holds (the reason is in docs/oci.md).
    pub(crate) fn ignore(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Refuses a leftover key the specification defines (everything xvisor
    /// supports has been taken); sets aside one it does not.
    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        if let Some(key) = self.map.keys().find(|key| spec_fields::defined(&self.path, key)) {
            return Err(field(&self.sub(key), "not supported by xvisor"));
        }
        for key in self.map.keys() {
            spec_fields::set_aside(self.sub(key));
        }
        Ok(())
    }
}
