//! The lake's folders as the tables `events` and `alerts`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result;
use datafusion::prelude::{SessionContext, col};
use demarc_lake::{ALERTS, EVENTS, Place, file_schema};
use demarc_model::{column, event_schema, schema::TIME_ZONE};

/// The rules query `events`; so does the lake.
pub use demarc_detect::EVENTS_TABLE;
pub const ALERTS_TABLE: &str = "alerts";

/// Registers `events` and `alerts` over the lake at `place`.
pub fn register(ctx: &SessionContext, place: &Place) -> Result<()> {
    let parquet =
        ParquetFormat::default().with_options(ctx.state().default_table_options().parquet);
    let events = ListingOptions::new(Arc::new(parquet))
        .with_file_extension(".parquet")
        .with_table_partition_cols(vec![
            (column::PROVIDER.to_owned(), DataType::Utf8),
            ("date".to_owned(), DataType::Utf8),
            ("hour".to_owned(), DataType::Utf8),
        ])
        // Every lake file is sorted by time (older files were not: statistics alone
        // are still right, so only the files that say so are taken as sorted).
        .with_file_sort_order(vec![vec![col(column::TIME).sort(true, false)]]);
    let events_schema = file_schema(&event_schema());
    table(ctx, place, EVENTS, EVENTS_TABLE, events, events_schema)?;

    let json = JsonFormat::default().with_newline_delimited(true);
    let alerts = ListingOptions::new(Arc::new(json))
        .with_file_extension(".jsonl")
        .with_table_partition_cols(vec![("date".to_owned(), DataType::Utf8)]);
    table(ctx, place, ALERTS, ALERTS_TABLE, alerts, alerts_schema())
}

fn table(
    ctx: &SessionContext,
    place: &Place,
    folder: &str,
    name: &str,
    options: ListingOptions,
    schema: SchemaRef,
) -> Result<()> {
    // A trailing separator: a folder, even before it exists.
    let location = match place {
        Place::Folder(root) => {
            let mut path = std::path::absolute(root.join(folder))?
                .to_string_lossy()
                .into_owned();
            path.push(std::path::MAIN_SEPARATOR);
            path
        }
        Place::Bucket(bucket) => {
            let base = bucket.url(&bucket.prefix);
            format!("{}/{folder}/", base.trim_end_matches('/'))
        }
    };
    let url = ListingTableUrl::parse(&location)?;
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config)?
        .with_cache(ctx.runtime_env().cache_manager.get_file_statistic_cache());
    ctx.register_table(name, Arc::new(table))?;
    Ok(())
}

/// The columns of an alert line (docs/alerts.md).
pub fn alerts_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let list = |name: &str| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        )
    };
    let time = |name: &str| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some(TIME_ZONE.into())),
            true,
        )
    };
    let position = Fields::from(vec![
        text("source", true),
        Field::new("partition", DataType::Int32, true),
        Field::new("offset", DataType::Int64, true),
        Field::new("line", DataType::Int64, true),
        Field::new("index", DataType::Int32, true),
    ]);
    let dedup = DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ])),
            false,
        )),
        false,
    );
    Arc::new(Schema::new(vec![
        text("alert_id", true),
        text("rule_id", true),
        text("title", true),
        text("category", true),
        text("severity", true),
        text("srm_layer", true),
        list("attack"),
        text("summary", true),
        list("event_ids"),
        time("event_time"),
        time("detected_at"),
        text("provider", true),
        text("account_id", true),
        text("region", true),
        text("actor", true),
        text("resource", true),
        Field::new(
            "source",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(position),
                true,
            ))),
            true,
        ),
        Field::new("dedup", dedup, true),
        text("dedup_key", true),
    ]))
}
