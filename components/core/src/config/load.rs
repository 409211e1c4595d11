//! Reading the configuration: each section's variables, parsed and checked together.

use super::*;

impl Config {
    /// Reads CORS and `sections`, validating each variable.
    pub fn load(vars: &dyn Variables, sections: &[Section]) -> Result<Self, ConfigError> {
        let bits = sections
            .iter()
            .fold(0, |bits, section| bits | 1 << *section as u32);
        Self::load_bits(vars, bits)
    }

    /// Reads CORS and a route's `sections` (see [`Sections`]).
    pub fn load_sections(vars: &dyn Variables, sections: Sections) -> Result<Self, ConfigError> {
        Self::load_bits(vars, sections.bits)
    }

    /// Reads CORS and the sections in `bits` (bit `1 << section`).
    fn load_bits(vars: &dyn Variables, bits: u32) -> Result<Self, ConfigError> {
        let get = |name: &'static str| read(vars, name);
        let wants = |section: Section| bits & (1 << section as u32) != 0;
        let mut config = Self {
            allowed_origins: parse_origins(&get("allowed_origins")?)?,
            auth: None,
            replay: None,
            amounts: None,
            gateway: None,
            lifetime: None,
            delivery: None,
            central_auth: None,
            gateways: None,
            duitku: None,
            midtrans: None,
            xendit: None,
            tripay: None,
            reconcile: None,
            bots: None,
            console: None,
            alerts: None,
        };
        if wants(Section::Auth) {
            let shared_secret = get("shared_secret")?;
            if shared_secret.is_empty() {
                return Err(ConfigError::new("shared_secret", "must not be empty"));
            }
            let previous = get("shared_secret_previous")?;
            config.auth = Some(Auth {
                shared_secret: Secret::new(shared_secret),
                shared_secret_previous: (!previous.is_empty()).then(|| Secret::new(previous)),
                scheme: SignatureScheme::Body,
            });
        }
        if wants(Section::Replay) {
            config.replay = Some(Replay {
                enforce_timestamp: parse_bool("enforce_timestamp", &get("enforce_timestamp")?)?,
                timestamp_skew_ms: parse_seconds(
                    "timestamp_skew_sec",
                    &get("timestamp_skew_sec")?,
                )?,
                nonce_ttl_ms: parse_seconds("nonce_ttl_seconds", &get("nonce_ttl_seconds")?)?,
            });
        }
        if wants(Section::Amounts) {
            let min_amount = parse_u64("min_amount", &get("min_amount")?)?;
            let max_amount = parse_u64("max_amount", &get("max_amount")?)?;
            if min_amount == 0 || min_amount > max_amount {
                return Err(ConfigError::new(
                    "max_amount",
                    "need 0 < min_amount <= max_amount",
                ));
            }
            config.amounts = Some(Amounts {
                min_amount,
                max_amount,
            });
        }
        if wants(Section::Gateway) {
            config.gateway = Some(Gateway {
                central_pg_base_url: parse_origin(
                    "central_pg_base_url",
                    &get("central_pg_base_url")?,
                )?,
                central_pg_create_path: parse_path(
                    "central_pg_create_path",
                    &get("central_pg_create_path")?,
                )?,
                central_pg_timeout: parse_millis(
                    "central_pg_timeout_ms",
                    &get("central_pg_timeout_ms")?,
                )?,
                public_base_url: parse_public_url(&get("public_base_url")?)?,
            });
        }
        if wants(Section::Lifetime) {
            config.lifetime = Some(Lifetime {
                deposit_ttl_ms: parse_ttl_days(&get("deposit_ttl_days")?)?,
            });
        }
        if wants(Section::Delivery) {
            config.delivery = Some(Delivery {
                bot_backend_url: parse_origin("bot_backend_url", &get("bot_backend_url")?)?,
                bot_credit_path: parse_path("bot_credit_path", &get("bot_credit_path")?)?,
                bot_timeout: parse_millis("bot_timeout_ms", &get("bot_timeout_ms")?)?,
                credit_retry_schedule: parse_schedule(
                    "credit_retry_schedule",
                    &get("credit_retry_schedule")?,
                )?,
                credit_max_retries: parse_u64("credit_max_retries", &get("credit_max_retries")?)?
                    .try_into()
                    .map_err(|_| ConfigError::new("credit_max_retries", "too large"))?,
                credit_lease: Duration::from_millis(parse_seconds(
                    "credit_lease_seconds",
                    &get("credit_lease_seconds")?,
                )?),
            });
        }
        if wants(Section::CentralPg) {
            let pg_secret = get("pg_shared_secret")?;
            let scheme = match get("pg_signature")?.trim() {
                "body" => SignatureScheme::Body,
                "timestamped" => SignatureScheme::Timestamped,
                other => {
                    return Err(ConfigError::new(
                        "pg_signature",
                        format!("`{other}` is not body or timestamped"),
                    ))
                }
            };
            let mut auth = if pg_secret.is_empty() {
                // Compatibility: without its own secret the Central PG shares the bot's.
                config.auth()?.clone()
            } else {
                Auth {
                    shared_secret: Secret::new(pg_secret),
                    shared_secret_previous: None,
                    scheme,
                }
            };
            auth.scheme = scheme;
            config.central_auth = Some(auth);
        }
        if wants(Section::Gateways) {
            let enabled = parse_gateways(&get("gateways_enabled")?)?;
            let default = get("gateway_default")?;
            let default = GatewayName::parse(default.trim())
                .filter(|name| enabled.contains(name))
                .ok_or_else(|| {
                    ConfigError::new(
                        "gateway_default",
                        format!("`{default}` is not one of gateways_enabled"),
                    )
                })?;
            config.gateways = Some(Gateways {
                enabled,
                default,
                timeout: parse_millis("gateway_timeout_ms", &get("gateway_timeout_ms")?)?,
                reconcile_after_ms: parse_seconds(
                    "reconcile_after_seconds",
                    &get("reconcile_after_seconds")?,
                )?,
            });
        }
        if wants(Section::Reconcile) {
            let schedule = parse_schedule("reconcile_schedule", &get("reconcile_schedule")?)?;
            if schedule.iter().any(Duration::is_zero) {
                return Err(ConfigError::new(
                    "reconcile_schedule",
                    "every delay must be at least 1 second",
                ));
            }
            let max = parse_u64("reconcile_max_per_sweep", &get("reconcile_max_per_sweep")?)?;
            config.reconcile = Some(Reconcile {
                schedule,
                max_per_sweep: u32::try_from(max)
                    .ok()
                    .filter(|m| (1..=1000).contains(m))
                    .ok_or_else(|| {
                        ConfigError::new("reconcile_max_per_sweep", "must be 1 to 1000")
                    })?,
            });
        }
        if wants(Section::Bots) {
            config.bots = Some(Bots::parse(&get(BOTS)?, |name| read(vars, name))?);
        }
        if wants(Section::Console) {
            // Parsed by the console's routes alone (`Config::console`): no other links it.
            config.console = Some(Secret::new(get(ADMIN_TOKEN)?));
        }
        if wants(Section::Alerts) {
            // Parsed by the alerts' route alone (`Config::alerts`): no other links it.
            let mut values = Vec::with_capacity(ALERT_VARIABLES.len());
            for name in ALERT_VARIABLES {
                values.push(Secret::new(get(name)?));
            }
            config.alerts = Some(values);
        }
        let retired = wants(Section::Retired);
        for section in GATEWAY_SECTIONS.iter().copied().filter(|s| wants(*s)) {
            config.load_gateway(vars, section, retired)?;
        }
        config.check_combinations()?;
        Ok(config)
    }

    /// Reads one gateway's credentials: while it is enabled each must be set; a gateway taken
    /// out of `gateways_enabled` is read only for the routes that serve its open deposits
    /// (`Section::Retired`), and only while its credentials are all still set.
    fn load_gateway(
        &mut self,
        vars: &dyn Variables,
        section: Section,
        retired: bool,
    ) -> Result<(), ConfigError> {
        let gateways = self.gateways().map_err(|_| not_read(Section::Gateways))?;
        let Some(gateway) = GatewayName::ALL
            .into_iter()
            .find(|g| Section::of_gateway(*g) == Some(section))
        else {
            return Ok(());
        };
        let enabled = gateways.is_enabled(gateway);
        if !enabled && !retired {
            // A disabled gateway costs a route that takes no notices no variable reads.
            return Ok(());
        }
        let timeout = gateways.timeout;
        let get = |name: &'static str| read(vars, name);
        // `None`: not set on a retired gateway, which is then not configured.
        let set = |name: &'static str| -> Result<Option<String>, ConfigError> {
            let value = get(name)?.trim().to_string();
            match (value.is_empty(), enabled) {
                (false, _) => Ok(Some(value)),
                (true, false) => Ok(None),
                (true, true) => Err(ConfigError::new(
                    name,
                    "must be set while its gateway is in gateways_enabled",
                )),
            }
        };
        match section {
            Section::Duitku => {
                let Some(merchant_code) = set("duitku_merchant_code")? else {
                    return Ok(());
                };
                let Some(api_key) = set("duitku_api_key")? else {
                    return Ok(());
                };
                let signature = match get("duitku_signature")?.trim() {
                    "hmac" => DuitkuSignature::Hmac,
                    "legacy" => DuitkuSignature::Legacy,
                    other => {
                        return Err(ConfigError::new(
                            "duitku_signature",
                            format!("`{other}` is not hmac or legacy"),
                        ))
                    }
                };
                self.duitku = Some(Duitku {
                    base_url: parse_origin("duitku_base_url", &get("duitku_base_url")?)?,
                    merchant_code,
                    api_key: Secret::new(api_key),
                    signature,
                    timeout,
                });
            }
            Section::Midtrans => {
                let Some(server_key) = set("midtrans_server_key")? else {
                    return Ok(());
                };
                self.midtrans = Some(Midtrans {
                    snap_url: parse_origin("midtrans_snap_url", &get("midtrans_snap_url")?)?,
                    api_url: parse_origin("midtrans_api_url", &get("midtrans_api_url")?)?,
                    server_key: Secret::new(server_key),
                    timeout,
                });
            }
            Section::Xendit => {
                let Some(secret_key) = set("xendit_secret_key")? else {
                    return Ok(());
                };
                let Some(callback_token) = set("xendit_callback_token")? else {
                    return Ok(());
                };
                self.xendit = Some(Xendit {
                    base_url: parse_origin("xendit_base_url", &get("xendit_base_url")?)?,
                    secret_key: Secret::new(secret_key),
                    callback_token: Secret::new(callback_token),
                    timeout,
                });
            }
            Section::Tripay => {
                let Some(merchant_code) = set("tripay_merchant_code")? else {
                    return Ok(());
                };
                let Some(api_key) = set("tripay_api_key")? else {
                    return Ok(());
                };
                let Some(private_key) = set("tripay_private_key")? else {
                    return Ok(());
                };
                let Some(method) = set("tripay_method")? else {
                    return Ok(());
                };
                let origin = parse_origin("tripay_base_url", &get("tripay_base_url")?)?;
                let path = parse_path("tripay_api_path", &get("tripay_api_path")?)?;
                self.tripay = Some(Tripay {
                    base_url: format!("{origin}{}", path.trim_end_matches('/')),
                    merchant_code,
                    api_key: Secret::new(api_key),
                    private_key: Secret::new(private_key),
                    method,
                    timeout,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads every section (tools and tests).
    pub fn load_all(vars: &dyn Variables) -> Result<Self, ConfigError> {
        Self::load(vars, ALL_SECTIONS)
    }

    /// Refuses values that are fine alone but defeat each other.
    fn check_combinations(&self) -> Result<(), ConfigError> {
        // Duitku's and Tripay's create calls must carry our callback URL.
        if let (Some(gateways), Some(gateway)) = (&self.gateways, &self.gateway) {
            let needs_url = [GatewayName::Duitku, GatewayName::Tripay]
                .into_iter()
                .find(|g| gateways.is_enabled(*g));
            if let (Some(name), None) = (needs_url, &gateway.public_base_url) {
                return Err(ConfigError::new(
                    "public_base_url",
                    format!(
                        "must be set while {name} is enabled (its invoices carry the callback URL)"
                    ),
                ));
            }
        }
        // Midtrans keeps a payment page open 5 minutes at least, and its invoices are opened
        // for half their validity: shorter, and Midtrans would take payments after the app
        // stopped asking about them.
        if let (Some(gateways), Some(lifetime)) = (&self.gateways, &self.lifetime) {
            if gateways.is_enabled(GatewayName::Midtrans)
                && lifetime.invoice_validity() < Duration::from_secs(600)
            {
                return Err(ConfigError::new(
                    "deposit_ttl_days",
                    "must be at least 20 minutes (0.014) while midtrans is enabled",
                ));
            }
        }
        let Some(delivery) = &self.delivery else {
            return Ok(());
        };
        // A delivery must end before its lease, or a sweep takes over while it still runs.
        let longest_delivery = delivery.bot_timeout.max(INLINE_BUDGET);
        if delivery.credit_lease <= longest_delivery {
            return Err(ConfigError::new(
                "credit_lease_seconds",
                format!(
                    "must be longer than bot_timeout_ms and the {} ms inline budget \
                     (a delivery must end before another owner may take it over)",
                    crate::platform::millis(INLINE_BUDGET)
                ),
            ));
        }
        // Between two attempts the records must not reach the end of their lifetime unseen.
        if let Some(lifetime) = &self.lifetime {
            let ttl = Duration::from_millis(lifetime.deposit_ttl_ms);
            if delivery
                .credit_retry_schedule
                .iter()
                .any(|step| *step > ttl)
            {
                return Err(ConfigError::new(
                    "credit_retry_schedule",
                    "no retry step may be longer than deposit_ttl_days",
                ));
            }
        }
        Ok(())
    }
}
