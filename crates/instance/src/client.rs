//! The caller's side of `xvisor ps` and `xvisor kill`: the running
//! instances asked through their supervisors' control sockets, and their
//! answers read into rows for the command line to print.

use crate::registry::{Registry, RegistryError, Request};
use crate::status::TaskRow;

/// What one supervisor said about its instance (`Request::Info`), as
/// key/value pairs in the order it gave them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceInfo(pub Vec<(String, String)>);

impl InstanceInfo {
    /// The value of `key`, when the supervisor gave one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn from_lines(lines: &[String]) -> Self {
        Self(
            lines
                .iter()
                .filter_map(|l| l.split_once('\t'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

/// A socket in the caller's registry that gave no usable answer.
#[derive(Debug)]
pub enum Unanswered {
    /// Not an instance at all (a guest with the host's network can bind a
    /// name): never listed.
    NotOurs(RegistryError),
    /// An instance that did not answer: listed as "not answering".
    Silent(RegistryError),
}

/// The caller's running instances, as `xvisor ps` lists them.
#[derive(Debug, Default)]
pub struct Listing {
    /// In the registry's order; one that did not answer has only `name`
    /// and `state` ("not answering").
    pub instances: Vec<InstanceInfo>,
    /// What went wrong with the others, in the registry's order.
    pub unanswered: Vec<Unanswered>,
}

/// Asks every instance of the caller for its `Info`. The supervisors are
/// asked all at once: one busy supervisor does not hold up the list. An
/// instance that ended between the listing and the question is left out.
pub fn running(registry: &Registry) -> Result<Listing, RegistryError> {
    let names = registry.names()?;
    let answers: Vec<(String, Result<Vec<String>, RegistryError>)> = std::thread::scope(|scope| {
        let asking: Vec<_> = names
            .into_iter()
            .map(|name| {
                scope.spawn(move || {
                    let answer = registry.ask(&name, &Request::Info);
                    (name, answer)
                })
            })
            .collect();
        asking.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut listing = Listing::default();
    for (name, answer) in answers {
        match answer {
            Ok(lines) => listing.instances.push(InstanceInfo::from_lines(&lines)),
            Err(RegistryError::NoSuchInstance(_)) => {}
            Err(e @ RegistryError::NotOurs { .. }) => listing.unanswered.push(Unanswered::NotOurs(e)),
            Err(e) => {
                listing.unanswered.push(Unanswered::Silent(e));
                listing.instances.push(InstanceInfo(vec![
                    ("name".into(), name),
                    ("state".into(), "not answering".into()),
                ]));
            }
        }
    }
    Ok(listing)
}

/// The task tree of the instance `name` (`xvisor ps NAME`), in tree order.
pub fn tasks(registry: &Registry, name: &str) -> Result<Vec<TaskRow>, RegistryError> {
    let lines = registry.ask(name, &Request::Tasks)?;
    Ok(lines.iter().filter_map(|l| TaskRow::decode(l)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lines_read_as_pairs() {
        let lines = ["name\tweb".to_string(), "no tab".into(), "command\ta\tb".into()];
        let info = InstanceInfo::from_lines(&lines);
        assert_eq!(info.get("name"), Some("web"));
        assert_eq!(info.get("command"), Some("a\tb"));
        assert_eq!(info.get("no tab"), None);
    }
}
