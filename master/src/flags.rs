//! `mesos-master` flags, with Mesos's names, defaults and value syntax
//! (src/master/flags.cpp). Every flag can also be set as `MESOS_<FLAG>`
//! (upper case), as in Mesos.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;
use mesos_proto::resources::Resources;

use crate::allocator::drf::Quantities;
use crate::allocator::AllocatorConfig;

/// Parsed master flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mesos-master",
    about = "Mesos master: DRF allocator, resource offers and the v1 scheduler API",
    disable_version_flag = true
)]
pub struct Flags {
    /// IP address to listen on (all interfaces if unset).
    #[arg(long, env = "MESOS_IP")]
    pub ip: Option<IpAddr>,

    /// Port to listen on.
    #[arg(long, env = "MESOS_PORT", default_value_t = 5050)]
    pub port: u16,

    /// IP address advertised to frameworks and agents (default: `--ip`, or
    /// the address of the default route).
    #[arg(long = "advertise_ip", env = "MESOS_ADVERTISE_IP")]
    pub advertise_ip: Option<IpAddr>,

    /// Port advertised to frameworks and agents (default: the bound port).
    #[arg(long = "advertise_port", env = "MESOS_ADVERTISE_PORT")]
    pub advertise_port: Option<u16>,

    /// Hostname advertised in MasterInfo (default: the system hostname).
    #[arg(long, env = "MESOS_HOSTNAME")]
    pub hostname: Option<String>,

    /// Whether to look up the hostname (otherwise the IP is advertised).
    #[arg(long = "hostname_lookup", env = "MESOS_HOSTNAME_LOOKUP", default_value = "true",
          value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub hostname_lookup: bool,

    /// Directory of the registry (`<work_dir>/registry.redb`); required
    /// with `--registry=replicated_log`, created if missing.
    #[arg(long = "work_dir", env = "MESOS_WORK_DIR")]
    pub work_dir: Option<String>,

    /// Where the registry of admitted agents and frameworks lives:
    /// `replicated_log` (default) keeps it durably in a redb database under
    /// `--work_dir` (single master: nothing is replicated, the name is
    /// Mesos's), `in_memory` loses it when the master stops.
    #[arg(long, env = "MESOS_REGISTRY", default_value = "replicated_log",
          value_parser = ["replicated_log", "in_memory"])]
    pub registry: String,

    /// Human readable cluster name.
    #[arg(long, env = "MESOS_CLUSTER")]
    pub cluster: Option<String>,

    /// ZooKeeper URL; not supported yet (standalone master only).
    #[arg(long, env = "MESOS_ZK")]
    pub zk: Option<String>,

    /// Quorum size for the replicated log (accepted, unused).
    #[arg(long, env = "MESOS_QUORUM")]
    pub quorum: Option<u32>,

    /// Time between periodic allocation runs.
    #[arg(long = "allocation_interval", env = "MESOS_ALLOCATION_INTERVAL",
          default_value = "1secs", value_parser = parse_duration)]
    pub allocation_interval: Duration,

    /// Rescind offers that were not used within this time (default: never).
    #[arg(long = "offer_timeout", env = "MESOS_OFFER_TIMEOUT", value_parser = parse_duration)]
    pub offer_timeout: Option<Duration>,

    /// An offer must contain one of these `|`-separated quantity sets.
    #[arg(long = "min_allocatable_resources", env = "MESOS_MIN_ALLOCATABLE_RESOURCES",
          default_value = "cpus:0.01|mem:32", value_parser = parse_min_allocatable)]
    pub min_allocatable_resources: MinAllocatable,

    /// Role weights, e.g. `role1=2,role2=1.5` (deprecated in Mesos in favour
    /// of `/weights`, still honoured).
    #[arg(long, env = "MESOS_WEIGHTS", value_parser = parse_weights)]
    pub weights: Option<Weights>,

    /// Resource names excluded from DRF shares, comma separated.
    #[arg(
        long = "fair_sharing_excluded_resource_names",
        env = "MESOS_FAIR_SHARING_EXCLUDED_RESOURCE_NAMES",
        value_delimiter = ','
    )]
    pub fair_sharing_excluded_resource_names: Vec<String>,

    /// Only offer agents with GPUs to GPU_RESOURCES frameworks.
    #[arg(long = "filter_gpu_resources", env = "MESOS_FILTER_GPU_RESOURCES", default_value = "true",
          value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub filter_gpu_resources: bool,

    /// Time between pings to an agent.
    #[arg(long = "agent_ping_timeout", env = "MESOS_AGENT_PING_TIMEOUT",
          default_value = "15secs", value_parser = parse_ping_timeout)]
    pub agent_ping_timeout: Duration,

    /// Unanswered pings after which an agent is removed.
    #[arg(long = "max_agent_ping_timeouts", env = "MESOS_MAX_AGENT_PING_TIMEOUTS",
          default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_agent_ping_timeouts: u32,

    /// How long agents the registry lists may take to re-register after a
    /// master restart before they are marked unreachable. Mesos requires at
    /// least 10mins; shorter values are accepted (with a warning) so that
    /// tests need not wait that long.
    #[arg(long = "agent_reregister_timeout", env = "MESOS_AGENT_REREGISTER_TIMEOUT",
          default_value = "10mins", value_parser = parse_positive_duration)]
    pub agent_reregister_timeout: Duration,

    /// The most agents (percentage of those recovered from the registry)
    /// that may be marked unreachable for not re-registering after a
    /// restart; above it the master exits instead (a safety net against
    /// e.g. a network problem of the master's own).
    #[arg(long = "recovery_agent_removal_limit", env = "MESOS_RECOVERY_AGENT_REMOVAL_LIMIT",
          default_value = "100%", value_parser = parse_percentage)]
    pub recovery_agent_removal_limit: Percentage,

    /// Completed frameworks kept for `/state`.
    #[arg(
        long = "max_completed_frameworks",
        env = "MESOS_MAX_COMPLETED_FRAMEWORKS",
        default_value_t = 50
    )]
    pub max_completed_frameworks: usize,

    /// Completed tasks kept per framework.
    #[arg(
        long = "max_completed_tasks_per_framework",
        env = "MESOS_MAX_COMPLETED_TASKS_PER_FRAMEWORK",
        default_value_t = 1000
    )]
    pub max_completed_tasks_per_framework: usize,

    /// Unreachable tasks remembered per framework.
    #[arg(
        long = "max_unreachable_tasks_per_framework",
        env = "MESOS_MAX_UNREACHABLE_TASKS_PER_FRAMEWORK",
        default_value_t = 1000
    )]
    pub max_unreachable_tasks_per_framework: usize,

    /// Require framework authentication (not supported: must be false).
    #[arg(long = "authenticate_frameworks", env = "MESOS_AUTHENTICATE_FRAMEWORKS",
          default_value = "false", value_parser = parse_bool, num_args = 0..=1,
          default_missing_value = "true")]
    pub authenticate_frameworks: bool,

    /// Require agent authentication (not supported: must be false).
    #[arg(long = "authenticate_agents", env = "MESOS_AUTHENTICATE_AGENTS",
          default_value = "false", value_parser = parse_bool, num_args = 0..=1,
          default_missing_value = "true")]
    pub authenticate_agents: bool,

    /// Log directory (logs go to stderr).
    #[arg(long = "log_dir", env = "MESOS_LOG_DIR")]
    pub log_dir: Option<String>,

    /// `INFO`, `WARNING` or `ERROR`.
    #[arg(long = "logging_level", env = "MESOS_LOGGING_LEVEL", default_value = "INFO",
          value_parser = ["INFO", "WARNING", "ERROR"])]
    pub logging_level: String,

    /// Print the version and exit.
    #[arg(long)]
    pub version: bool,
}

/// `--min_allocatable_resources`: alternatives of scalar quantities.
#[derive(Debug, Clone, PartialEq)]
pub struct MinAllocatable(pub Vec<Quantities>);

/// `--weights`: role → weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights(pub HashMap<String, f64>);

/// A percentage flag value such as `100%`, kept as a fraction (1.0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentage(pub f64);

/// Mesos's `MIN_AGENT_REREGISTER_TIMEOUT`.
pub const MIN_AGENT_REREGISTER_TIMEOUT: Duration = Duration::from_secs(600);

impl Flags {
    /// The allocator's part of the configuration.
    pub fn allocator_config(&self) -> AllocatorConfig {
        AllocatorConfig {
            allocation_interval: self.allocation_interval,
            min_allocatable: self.min_allocatable_resources.0.clone(),
            weights: self.weights.clone().map(|w| w.0).unwrap_or_default(),
            fair_sharing_excluded: self.fair_sharing_excluded_resource_names.clone(),
            filter_gpu_resources: self.filter_gpu_resources,
        }
    }

    /// Flags for `/flags` and `/state`, as Mesos shows them (strings).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            map.insert(k.to_string(), v);
        };
        if let Some(ip) = self.ip {
            put("ip", ip.to_string());
        }
        put("port", self.port.to_string());
        if let Some(ip) = self.advertise_ip {
            put("advertise_ip", ip.to_string());
        }
        if let Some(port) = self.advertise_port {
            put("advertise_port", port.to_string());
        }
        if let Some(hostname) = &self.hostname {
            put("hostname", hostname.clone());
        }
        put("hostname_lookup", self.hostname_lookup.to_string());
        if let Some(dir) = &self.work_dir {
            put("work_dir", dir.clone());
        }
        put("registry", self.registry.clone());
        if let Some(cluster) = &self.cluster {
            put("cluster", cluster.clone());
        }
        put(
            "allocation_interval",
            format_duration(self.allocation_interval),
        );
        if let Some(timeout) = self.offer_timeout {
            put("offer_timeout", format_duration(timeout));
        }
        put(
            "min_allocatable_resources",
            format_min_allocatable(&self.min_allocatable_resources),
        );
        if let Some(weights) = &self.weights {
            let mut pairs: Vec<String> =
                weights.0.iter().map(|(r, w)| format!("{r}={w}")).collect();
            pairs.sort();
            put("weights", pairs.join(","));
        }
        put(
            "filter_gpu_resources",
            self.filter_gpu_resources.to_string(),
        );
        put(
            "agent_ping_timeout",
            format_duration(self.agent_ping_timeout),
        );
        put(
            "max_agent_ping_timeouts",
            self.max_agent_ping_timeouts.to_string(),
        );
        put(
            "agent_reregister_timeout",
            format_duration(self.agent_reregister_timeout),
        );
        put(
            "recovery_agent_removal_limit",
            format!(
                "{}%",
                trim_float(self.recovery_agent_removal_limit.0 * 100.0)
            ),
        );
        put(
            "max_completed_frameworks",
            self.max_completed_frameworks.to_string(),
        );
        put(
            "max_completed_tasks_per_framework",
            self.max_completed_tasks_per_framework.to_string(),
        );
        put(
            "max_unreachable_tasks_per_framework",
            self.max_unreachable_tasks_per_framework.to_string(),
        );
        put(
            "authenticate_frameworks",
            self.authenticate_frameworks.to_string(),
        );
        put("authenticate_agents", self.authenticate_agents.to_string());
        put("logging_level", self.logging_level.clone());
        map
    }

    /// Rejects combinations this master cannot honour.
    pub fn validate(&self) -> Result<(), String> {
        if self.registry == "replicated_log" && self.work_dir.is_none() {
            return Err(
                "Flag '--work_dir' is required for the replicated log based registry \
                        (--registry=replicated_log, the default); use --registry=in_memory \
                        to keep the registry in memory"
                    .into(),
            );
        }
        if self.zk.is_some() {
            return Err("Flag '--zk': ZooKeeper (HA) mode is not supported yet".into());
        }
        if self.authenticate_frameworks || self.authenticate_agents {
            return Err("Flags '--authenticate_*': authentication is not supported".into());
        }
        Ok(())
    }
}

/// Parses Mesos's boolean flag values.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("expected 'true' or 'false', got '{value}'")),
    }
}

/// Parses a stout `Duration`: a number followed by `ns`, `us`, `ms`, `secs`,
/// `mins`, `hrs`, `days` or `weeks`, e.g. `1secs`, `500ms`, `1.5mins`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    mesos_proto::duration::parse(value).map_err(|e| e.to_string())
}

/// Formats a duration the way stout prints it (`1secs`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    mesos_proto::duration::format(d)
}

/// A number with up to six decimals and no trailing zeros (`0.5`, `100`).
fn trim_float(value: f64) -> String {
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `--agent_ping_timeout` must be within 1 s – 15 min (Mesos's bounds).
fn parse_ping_timeout(value: &str) -> Result<Duration, String> {
    let d = parse_duration(value)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(15 * 60) {
        return Err("must be between 1secs and 15mins".to_string());
    }
    Ok(d)
}

/// A duration that must be positive.
fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    let d = parse_duration(value)?;
    if d.is_zero() {
        return Err("must be positive".to_string());
    }
    Ok(d)
}

/// Parses `NN%` with NN within 0–100 (Mesos's rule for
/// `--recovery_agent_removal_limit`).
pub fn parse_percentage(value: &str) -> Result<Percentage, String> {
    let number = value
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| format!("missing '%' in '{value}'"))?;
    let number: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("invalid percentage '{value}'"))?;
    if !(0.0..=100.0).contains(&number) {
        return Err(format!("'{value}' must be within [0%-100%]"));
    }
    Ok(Percentage(number / 100.0))
}

/// Parses `cpus:0.01|mem:32` into alternatives of scalar quantities.
pub fn parse_min_allocatable(value: &str) -> Result<MinAllocatable, String> {
    let mut alternatives = Vec::new();
    for part in value.split('|').filter(|p| !p.trim().is_empty()) {
        let resources = Resources::parse(part, "*").map_err(|e| e.to_string())?;
        let quantities = resources.scalar_quantities();
        if quantities.is_empty() {
            return Err(format!("'{part}' has no scalar resources"));
        }
        alternatives.push(quantities);
    }
    Ok(MinAllocatable(alternatives))
}

fn format_min_allocatable(min: &MinAllocatable) -> String {
    min.0
        .iter()
        .map(|set| {
            set.iter()
                .map(|(n, q)| format!("{n}:{}", trim_float(*q)))
                .collect::<Vec<_>>()
                .join(";")
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Parses `role1=2,role2=1.5`.
pub fn parse_weights(value: &str) -> Result<Weights, String> {
    let mut weights = HashMap::new();
    for pair in value.split(',').filter(|p| !p.trim().is_empty()) {
        let (role, weight) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected role=weight, got '{pair}'"))?;
        let weight: f64 = weight
            .trim()
            .parse()
            .map_err(|_| format!("invalid weight in '{pair}'"))?;
        if weight <= 0.0 || !weight.is_finite() {
            return Err(format!("weight must be positive in '{pair}'"));
        }
        weights.insert(role.trim().to_string(), weight);
    }
    Ok(Weights(weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        let mut all = vec!["mesos-master"];
        all.extend_from_slice(args);
        Flags::try_parse_from(all)
    }

    #[test]
    fn defaults_match_mesos() {
        let flags = parse(&[]).unwrap();
        assert_eq!(flags.port, 5050);
        assert_eq!(flags.allocation_interval, Duration::from_secs(1));
        assert_eq!(flags.agent_ping_timeout, Duration::from_secs(15));
        assert_eq!(flags.max_agent_ping_timeouts, 5);
        assert_eq!(flags.offer_timeout, None);
        assert_eq!(
            flags.min_allocatable_resources.0,
            vec![
                vec![("cpus".to_string(), 0.01)],
                vec![("mem".to_string(), 32.0)]
            ]
        );
        assert_eq!(flags.to_map()["allocation_interval"], "1secs");
        assert_eq!(
            flags.to_map()["min_allocatable_resources"],
            "cpus:0.01|mem:32"
        );
    }

    #[test]
    fn mesos_duration_syntax() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5mins").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2hrs").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5s")
            .unwrap_err()
            .contains("unknown unit 's'"));
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5secs");
        assert_eq!(format_duration(Duration::from_secs(600)), "10mins");
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err = parse(&["--allocation_interval=fast"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--allocation_interval"), "{err}");
        let err = parse(&["--agent_ping_timeout=100ms"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--agent_ping_timeout") && err.contains("between"),
            "{err}"
        );
        let err = parse(&["--weights=a"]).unwrap_err().to_string();
        assert!(err.contains("--weights"), "{err}");
        let err = parse(&["--recovery_agent_removal_limit=50"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--recovery_agent_removal_limit") && err.contains("missing '%'"),
            "{err}"
        );
        let err = parse(&["--agent_reregister_timeout=0secs"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--agent_reregister_timeout"), "{err}");
        let err = parse(&["--min_allocatable_resources=cpus"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--min_allocatable_resources"), "{err}");
    }

    #[test]
    fn durable_registry_needs_a_work_dir() {
        let err = parse(&[]).unwrap().validate().unwrap_err();
        assert!(
            err.contains("--work_dir") && err.contains("in_memory"),
            "{err}"
        );
        assert!(parse(&["--registry=in_memory"]).unwrap().validate().is_ok());
        assert!(parse(&["--work_dir=/tmp/m"]).unwrap().validate().is_ok());
        let flags = parse(&["--recovery_agent_removal_limit=12.5%"]).unwrap();
        assert_eq!(flags.recovery_agent_removal_limit, Percentage(0.125));
        assert_eq!(flags.to_map()["recovery_agent_removal_limit"], "12.5%");
    }

    #[test]
    fn weights_and_bools() {
        let flags = parse(&["--weights=a=2,b=0.5", "--filter_gpu_resources=false"]).unwrap();
        let weights = flags.weights.unwrap().0;
        assert_eq!(weights["a"], 2.0);
        assert_eq!(weights["b"], 0.5);
        assert!(!flags.filter_gpu_resources);
        assert!(parse(&["--hostname_lookup"]).unwrap().hostname_lookup);
    }
}
