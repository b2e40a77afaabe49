//! The engine's knobs and their validation. Messages name the setting as the
//! operator gives it (the `serve`/`migrate` flag; the config file and
//! environment use the same names).

use std::time::Duration;

use crate::health::HealthConfig;

/// Operator knobs, validated at startup.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Writer time per chunk.
    pub budget: Duration,
    /// Largest fraction of wall time migrations may hold the writer (0, 1].
    pub duty: f64,
    /// Automatic retries of a failed migration stop at this many attempts.
    pub max_attempts: i64,
    pub min_batch: i64,
    pub max_batch: i64,
    /// The WAL file is kept under this many bytes while jobs run (0: not
    /// bounded); see `db::bound_wal`.
    pub wal_limit_bytes: u64,
    /// When a running migration holds back for the database's health.
    pub health: HealthConfig,
}

impl Default for EngineConfig {
    /// The settings' declared defaults.
    fn default() -> Self {
        use crate::settings::default_of;
        EngineConfig {
            budget: Duration::from_secs_f64(default_of::<f64>("migration_budget_ms") / 1000.0),
            duty: default_of("migration_duty"),
            max_attempts: default_of("migration_max_attempts"),
            min_batch: default_of("migration_min_batch"),
            max_batch: default_of("migration_max_batch"),
            wal_limit_bytes: default_of::<u64>("wal_limit_mb") * 1024 * 1024,
            health: HealthConfig::default(),
        }
    }
}

/// A setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineConfigError {
    #[error("--migration-budget-ms: must be greater than 0")]
    Budget,
    #[error("--migration-duty: must be in (0, 1], got {0}")]
    Duty(f64),
    #[error("--migration-max-attempts: must be at least 1")]
    MaxAttempts,
    #[error("--migration-min-batch: must be greater than 0")]
    MinBatch,
    #[error("--migration-min-batch ({min}) must not exceed --migration-max-batch ({max})")]
    BatchOrder { min: i64, max: i64 },
}

impl EngineConfig {
    pub fn validate(&self) -> Result<(), EngineConfigError> {
        if self.budget.is_zero() {
            return Err(EngineConfigError::Budget);
        }
        if !(self.duty > 0.0 && self.duty <= 1.0) {
            return Err(EngineConfigError::Duty(self.duty));
        }
        if self.max_attempts < 1 {
            return Err(EngineConfigError::MaxAttempts);
        }
        if self.min_batch <= 0 {
            return Err(EngineConfigError::MinBatch);
        }
        if self.min_batch > self.max_batch {
            return Err(EngineConfigError::BatchOrder {
                min: self.min_batch,
                max: self.max_batch,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_parameters_are_rejected_naming_the_flag() {
        let ok = EngineConfig::default();
        assert!(ok.validate().is_ok());
        let cases: Vec<(EngineConfig, &str)> = vec![
            (
                EngineConfig {
                    budget: Duration::ZERO,
                    ..ok.clone()
                },
                "--migration-budget-ms",
            ),
            (
                EngineConfig {
                    duty: 0.0,
                    ..ok.clone()
                },
                "--migration-duty",
            ),
            (
                EngineConfig {
                    duty: 1.5,
                    ..ok.clone()
                },
                "--migration-duty",
            ),
            (
                EngineConfig {
                    duty: f64::NAN,
                    ..ok.clone()
                },
                "--migration-duty",
            ),
            (
                EngineConfig {
                    min_batch: 0,
                    ..ok.clone()
                },
                "--migration-min-batch",
            ),
            (
                EngineConfig {
                    min_batch: 10,
                    max_batch: 5,
                    ..ok.clone()
                },
                "must not exceed",
            ),
            (
                EngineConfig {
                    max_attempts: 0,
                    ..ok.clone()
                },
                "--migration-max-attempts",
            ),
        ];
        for (cfg, want) in cases {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
