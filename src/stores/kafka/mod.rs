//! Where Kafka is: real brokers from the settings, or librdkafka's in-process mock cluster when
//! the brokers setting is `embedded`. Everything else (producer, consumer, admin, lag) builds its
//! client from [`KafkaEndpoint::client_config`], so the rest of the code never knows which.

pub mod context;
pub mod embedded;
pub mod lag;
pub mod producer;

use std::{sync::Arc, time::Duration};

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
    types::RDKafkaErrorCode,
};

use crate::config::Settings;

pub use embedded::EmbeddedKafka;

/// How long metadata and admin calls may take; they sit on readiness and start-up paths.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A resolved Kafka location plus, for the embedded mode, the mock cluster that must outlive
/// every client.
#[derive(Clone)]
pub struct KafkaEndpoint {
    bootstrap: Arc<str>,
    embedded: Option<Arc<EmbeddedKafka>>,
    /// TLS and SASL properties every client gets (none for the embedded cluster).
    security: Arc<[(&'static str, String)]>,
}

impl KafkaEndpoint {
    /// Resolves the settings: starts the embedded cluster (creating `topics`) or points at the
    /// configured brokers and creates missing `topics` there.
    ///
    /// # Errors
    /// The embedded cluster could not start, or the brokers did not answer.
    pub async fn resolve(settings: &Settings) -> anyhow::Result<Self> {
        let partitions = i32::try_from(settings.kafka.partitions).unwrap_or(i32::MAX);
        let topics = [
            (settings.kafka.topic.clone(), partitions),
            (settings.kafka.dead_letter_topic.clone(), 1),
            (settings.lifecycle.events_topic.clone(), partitions),
        ];
        if settings.kafka_is_embedded() {
            let embedded =
                tokio::task::spawn_blocking(move || EmbeddedKafka::start(&topics)).await??;
            return Ok(Self {
                bootstrap: embedded.bootstrap_servers().into(),
                embedded: Some(Arc::new(embedded)),
                security: Arc::new([]),
            });
        }
        let endpoint = Self::for_brokers(settings)?;
        endpoint.ensure_topics(&topics).await?;
        Ok(endpoint)
    }

    /// The configured brokers with their security settings, without touching them.
    ///
    /// # Errors
    /// The security settings are inconsistent.
    pub fn for_brokers(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            bootstrap: settings.kafka.brokers.trim().into(),
            embedded: None,
            security: settings.kafka.security_properties()?.into(),
        })
    }

    /// An endpoint for brokers already known to exist (tests that manage topics themselves).
    pub fn from_bootstrap(bootstrap: &str) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            embedded: None,
            security: Arc::new([]),
        }
    }

    /// A client configuration pointing at this endpoint, with conservative socket timeouts so a
    /// dead broker is noticed in seconds.
    pub fn client_config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", self.bootstrap.as_ref())
            .set("socket.timeout.ms", "10000")
            .set("log_level", "4");
        for (key, value) in self.security.iter() {
            cfg.set(*key, value);
        }
        cfg
    }

    /// Creates the topics that do not exist yet. Topics that exist are left as they are.
    ///
    /// # Errors
    /// The brokers did not answer or refused the creation.
    pub async fn ensure_topics(&self, topics: &[(String, i32)]) -> anyhow::Result<()> {
        if let Some(embedded) = &self.embedded {
            return embedded.create_topics(topics);
        }
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
        let results = admin.create_topics(&new_topics, &opts).await?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    anyhow::bail!("creating Kafka topic {topic} failed: {code}")
                }
            }
        }
        Ok(())
    }

    /// A client for readiness checks, built once and reused.
    ///
    /// # Errors
    /// librdkafka refused the configuration.
    pub(crate) fn pinger(&self) -> Result<Pinger, KafkaError> {
        Ok(Pinger {
            consumer: Arc::new(self.client_config().create()?),
        })
    }
}

/// Asks the brokers for a topic's metadata with one client built once (readiness checks).
pub(crate) struct Pinger {
    consumer: Arc<BaseConsumer>,
}

impl Pinger {
    /// Asks the brokers for the metadata of `topic`.
    ///
    /// # Errors
    /// The brokers did not answer in time, or the topic is missing.
    pub async fn ping(&self, topic: &str) -> Result<(), KafkaError> {
        let (consumer, topic) = (self.consumer.clone(), topic.to_string());
        tokio::task::spawn_blocking(move || {
            let md = consumer.fetch_metadata(Some(&topic), Duration::from_secs(3))?;
            match md.topics().first().and_then(|t| t.error()) {
                Some(err) => Err(KafkaError::MetadataFetch(err.into())),
                None => Ok(()),
            }
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled))
    }
}
