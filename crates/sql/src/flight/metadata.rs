//! What BI tools ask before they query: the server's SqlInfo, the catalogs, schemas,
//! tables (with their columns) and table types.

use std::sync::OnceLock;

use arrow::array::RecordBatch;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables, SqlInfo,
    SqlNullOrdering, SqlSupportedCaseSensitivity, SqlSupportedTransaction, SupportedSqlGrammar,
};
use tonic::Status;

use crate::{CATALOG, Lake, SCHEMA};

/// The one table type the lake has.
const TABLE: &str = "TABLE";

/// SqlInfo, complete enough that JDBC's `DatabaseMetaData` getters all have a value.
pub fn sql_info() -> Result<&'static SqlInfoData, Status> {
    static DATA: OnceLock<Result<SqlInfoData, String>> = OnceLock::new();
    DATA.get_or_init(|| build_sql_info().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Status::internal(e.clone()))
}

fn build_sql_info() -> arrow_flight::error::Result<SqlInfoData> {
    {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "demarc");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(
            SqlInfo::FlightSqlServerTransaction,
            SqlSupportedTransaction::None as i32,
        );
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.append(SqlInfo::FlightSqlServerBulkIngestion, false);
        b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
        b.append(SqlInfo::FlightSqlServerStatementTimeout, 0_i32);
        b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0_i32);
        b.append(SqlInfo::SqlDdlCatalog, false);
        b.append(SqlInfo::SqlDdlSchema, false);
        b.append(SqlInfo::SqlDdlTable, false);
        b.append(
            SqlInfo::SqlIdentifierCase,
            SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
        );
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.append(
            SqlInfo::SqlQuotedIdentifierCase,
            SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
        );
        b.append(SqlInfo::SqlAllTablesAreSelectable, true);
        b.append(
            SqlInfo::SqlNullOrdering,
            SqlNullOrdering::SqlNullsSortedHigh as i32,
        );
        b.append(SqlInfo::SqlKeywords, &[] as &[&str]);
        b.append(
            SqlInfo::SqlNumericFunctions,
            &[
                "abs", "ceil", "floor", "round", "power", "sqrt", "ln", "log10",
            ] as &[&str],
        );
        b.append(
            SqlInfo::SqlStringFunctions,
            &[
                "lower",
                "upper",
                "length",
                "substr",
                "trim",
                "concat",
                "strpos",
                "regexp_like",
            ] as &[&str],
        );
        b.append(SqlInfo::SqlSystemFunctions, &[] as &[&str]);
        b.append(
            SqlInfo::SqlDatetimeFunctions,
            &["now", "date_trunc", "date_bin", "date_part", "to_timestamp"] as &[&str],
        );
        b.append(SqlInfo::SqlSearchStringEscape, "\\");
        b.append(SqlInfo::SqlExtraNameCharacters, "");
        b.append(SqlInfo::SqlSupportsColumnAliasing, true);
        b.append(SqlInfo::SqlNullPlusNullIsNull, true);
        b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
        b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
        b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
        b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
        b.append(SqlInfo::SqlSupportedGroupBy, 0b11_i32);
        b.append(SqlInfo::SqlSupportsLikeEscapeClause, false);
        b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
        b.append(
            SqlInfo::SqlSupportedGrammar,
            SupportedSqlGrammar::SqlCoreGrammar as i32,
        );
        b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
        b.append(SqlInfo::SqlOuterJoinsSupportLevel, 2_i32);
        b.append(SqlInfo::SqlSchemaTerm, "schema");
        b.append(SqlInfo::SqlProcedureTerm, "procedure");
        b.append(SqlInfo::SqlCatalogTerm, "catalog");
        b.append(SqlInfo::SqlCatalogAtStart, true);
        b.append(SqlInfo::SqlSchemasSupportedActions, 0_i32);
        b.append(SqlInfo::SqlCatalogsSupportedActions, 0_i32);
        b.append(SqlInfo::SqlSupportedPositionedCommands, 0_i32);
        b.append(SqlInfo::SqlSelectForUpdateSupported, false);
        b.append(SqlInfo::SqlStoredProceduresSupported, false);
        b.append(SqlInfo::SqlSupportedSubqueries, 0b1111_i32);
        b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
        b.append(SqlInfo::SqlSupportedUnions, 0b11_i32);
        for limit in [
            SqlInfo::SqlMaxBinaryLiteralLength,
            SqlInfo::SqlMaxCharLiteralLength,
            SqlInfo::SqlMaxColumnNameLength,
            SqlInfo::SqlMaxColumnsInGroupBy,
            SqlInfo::SqlMaxColumnsInIndex,
            SqlInfo::SqlMaxColumnsInOrderBy,
            SqlInfo::SqlMaxColumnsInSelect,
            SqlInfo::SqlMaxColumnsInTable,
            SqlInfo::SqlMaxConnections,
            SqlInfo::SqlMaxCursorNameLength,
            SqlInfo::SqlMaxIndexLength,
            SqlInfo::SqlDbSchemaNameLength,
            SqlInfo::SqlMaxProcedureNameLength,
            SqlInfo::SqlMaxCatalogNameLength,
            SqlInfo::SqlMaxRowSize,
            SqlInfo::SqlMaxStatementLength,
            SqlInfo::SqlMaxStatements,
            SqlInfo::SqlMaxTableNameLength,
            SqlInfo::SqlMaxTablesInSelect,
            SqlInfo::SqlMaxUsernameLength,
        ] {
            // 0: no limit known.
            b.append(limit, 0_i64);
        }
        b.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, false);
        b.append(SqlInfo::SqlDefaultTransactionIsolation, 0_i64);
        b.append(SqlInfo::SqlTransactionsSupported, false);
        b.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0_i32);
        b.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
        b.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, true);
        b.append(SqlInfo::SqlSupportedResultSetTypes, 0_i32);
        b.append(
            SqlInfo::SqlSupportedConcurrenciesForResultSetUnspecified,
            0_i32,
        );
        b.append(
            SqlInfo::SqlSupportedConcurrenciesForResultSetForwardOnly,
            0_i32,
        );
        b.append(
            SqlInfo::SqlSupportedConcurrenciesForResultSetScrollSensitive,
            0_i32,
        );
        b.append(
            SqlInfo::SqlSupportedConcurrenciesForResultSetScrollInsensitive,
            0_i32,
        );
        b.append(SqlInfo::SqlBatchUpdatesSupported, false);
        b.append(SqlInfo::SqlSavepointsSupported, false);
        b.append(SqlInfo::SqlNamedParametersSupported, false);
        b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
        b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
        b.build()
    }
}

fn status(error: impl std::fmt::Display) -> Status {
    Status::internal(error.to_string())
}

pub fn catalogs(query: CommandGetCatalogs) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    builder.append(CATALOG);
    builder.build().map_err(status)
}

pub fn schemas(query: CommandGetDbSchemas) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    builder.append(CATALOG, SCHEMA);
    builder.build().map_err(status)
}

pub fn table_types(query: CommandGetTableTypes) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    builder.append(TABLE);
    builder.build().map_err(status)
}

/// Every table of the lake's schema; the builder applies the client's filters (a
/// missing catalog means all of them, as ADBC asks).
pub async fn tables(lake: &Lake, query: CommandGetTables) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    let schema = lake
        .context()
        .catalog(CATALOG)
        .and_then(|c| c.schema(SCHEMA))
        .ok_or_else(|| Status::internal("the lake's schema is missing"))?;
    let mut names = schema.table_names();
    names.sort();
    for name in names {
        let table = schema.table(&name).await.map_err(status)?;
        let Some(table) = table else { continue };
        builder
            .append(CATALOG, SCHEMA, &name, TABLE, table.schema().as_ref())
            .map_err(status)?;
    }
    builder.build().map_err(status)
}
