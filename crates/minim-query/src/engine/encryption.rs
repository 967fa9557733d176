//! Lets DataFusion read encrypted segments: an `EncryptionFactory` that hands the
//! Parquet reader the store's key retriever (keys are found from each file's footer
//! key metadata). Registered per query session, only when the store encrypts, and built
//! for the reader: without personal access it refuses the personal column's key.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::config::{EncryptionFactoryOptions, TableParquetOptions};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::parquet_encryption::EncryptionFactory;
use datafusion::prelude::SessionContext;
use minim_store::Encryption;
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::encryption::encrypt::FileEncryptionProperties;

const FACTORY_ID: &str = "minim-segments";

#[derive(Debug)]
struct SegmentKeys {
    enc: Encryption,
    personal: bool,
}

#[async_trait::async_trait]
impl EncryptionFactory for SegmentKeys {
    async fn get_file_encryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        _schema: &SchemaRef,
        _file_path: &datafusion::object_store::path::Path,
    ) -> Result<Option<Arc<FileEncryptionProperties>>> {
        Err(DataFusionError::Plan(
            "query sessions never write segments".into(),
        ))
    }

    async fn get_file_decryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        _file_path: &datafusion::object_store::path::Path,
    ) -> Result<Option<Arc<FileDecryptionProperties>>> {
        let props = self
            .enc
            .decryption_properties(self.personal)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Some(props))
    }
}

/// The Parquet options for reading segments: with `encryption`, registers the key
/// factory (handing out personal column keys only with `personal`) on the session and
/// points the options at it.
pub(crate) fn parquet_options(
    ctx: &SessionContext,
    encryption: Option<&Encryption>,
    personal: bool,
) -> TableParquetOptions {
    let mut options = TableParquetOptions::default();
    if let Some(enc) = encryption {
        let keys = SegmentKeys {
            enc: enc.clone(),
            personal,
        };
        ctx.runtime_env()
            .register_parquet_encryption_factory(FACTORY_ID, Arc::new(keys));
        options.crypto.factory_id = Some(FACTORY_ID.to_owned());
    }
    options
}
