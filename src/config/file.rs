//! `mailmfa.toml`: its text into [`Settings`], each key through [`Settings::set`]; the
//! `[panel]` table kept as written, the `[notify]` table read by
//! [`NotifySettings::from_table`].

use super::{error, ConfigError, Settings};
use crate::notify::NotifySettings;
use std::path::Path;

impl Settings {
    /// Parses the text of a `mailmfa.toml` found at `path` (named in errors).
    pub fn from_toml(text: &str, path: &Path) -> Result<Settings, ConfigError> {
        let origin = path.display().to_string();
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            error(&origin, format!("not valid TOML: {}", e.message()))
        })?;
        let mut settings = Settings::default();
        for (key, value) in &table {
            match (key.as_str(), value) {
                ("panel", toml::Value::Table(panel)) => {
                    settings.panel = Some(panel.clone());
                    continue;
                }
                ("notify", toml::Value::Table(notify)) => {
                    settings.notify =
                        NotifySettings::from_table(notify).map_err(|m| error(&origin, m))?;
                    continue;
                }
                _ => {}
            }
            let value = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) if key == "nat64_prefixes" => items
                    .iter()
                    .map(|item| item.as_str())
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| error(&origin, "`nat64_prefixes` must be a list of strings"))?
                    .join(","),
                _ => {
                    return Err(error(
                        &origin,
                        format!("`{key}` must be a string, number or boolean"),
                    ))
                }
            };
            if matches!(
                key.as_str(),
                "config" | "split" | "verify" | "account" | "pwdfile"
            ) {
                return Err(error(
                    &origin,
                    format!("`{key}` belongs on the pam.d line only"),
                ));
            }
            settings.set(key, &value).map_err(|m| error(&origin, m))?;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_errors() {
        let path = Path::new("/etc/mailmfa/mailmfa.toml");
        for text in [
            "windw = 1",
            "window = \"x\"",
            "window = 1\nwindow = 2",
            "record_dir = [1]",
            "split = true",
            "[section]\nwindow = 1",
            "digits = 7",
            "window = ",
        ] {
            let err = Settings::from_toml(text, path).unwrap_err();
            assert_eq!(err.origin, "/etc/mailmfa/mailmfa.toml", "{text}");
        }
    }

    #[test]
    fn the_shipped_example_states_the_defaults() {
        let text = include_str!("../../mailmfa.toml.example");
        assert_eq!(
            Settings::from_toml(text, Path::new("x")).unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn an_empty_file_means_defaults() {
        assert_eq!(
            Settings::from_toml("", Path::new("/x")).unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn the_panel_table_is_kept_raw_and_other_tables_are_refused() {
        let path = Path::new("/etc/mailmfa.toml");
        let text = "window = 2\n[panel]\nlisten = \"127.0.0.1:8080\"\nanything = [1, 2]\n";
        let settings = Settings::from_toml(text, path).unwrap();
        assert_eq!(settings.window, 2);
        let panel = settings.panel.unwrap();
        assert_eq!(panel["listen"].as_str(), Some("127.0.0.1:8080"));
        assert!(panel.contains_key("anything"));
        assert_eq!(Settings::from_toml("", path).unwrap().panel, None);
        for bad in ["[other]\nx = 1\n", "panel = 1\n", "[record]\nx = 1\n"] {
            assert!(Settings::from_toml(bad, path).is_err(), "{bad}");
        }
    }
}
