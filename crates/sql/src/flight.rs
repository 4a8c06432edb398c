//! `demarc serve --flight-sql`: the lake's tables over Arrow Flight SQL, for BI tools
//! (JDBC, ADBC, ODBC) and scripts.
//!
//! Stateless: a statement's ticket and a prepared statement's handle carry the SQL (and
//! the bound parameters), and every call plans the query again, read-only, over the
//! lake as it is then; so a file written a moment ago is in the next answer, and the
//! server keeps nothing per client. Every call but the Handshake needs the bearer token
//! (see [`Auth`]).

mod auth;
mod metadata;

use std::net::SocketAddr;
use std::pin::Pin;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::SqlInfoData;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::prelude::DataFrame;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

pub use auth::Auth;

use crate::Lake;

/// The Flight SQL service over one lake.
#[derive(Debug, Clone)]
pub struct FlightSql {
    lake: Lake,
    auth: Auth,
}

/// A certificate chain and its key, PEM.
#[derive(Debug, Clone)]
pub struct Tls {
    pub certificate: Vec<u8>,
    pub key: Vec<u8>,
}

impl FlightSql {
    pub fn new(lake: Lake, auth: Auth) -> Self {
        Self { lake, auth }
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        tls: Option<Tls>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), String> {
        let mut server = Server::builder();
        if let Some(tls) = tls {
            server = server
                .tls_config(
                    ServerTlsConfig::new().identity(Identity::from_pem(tls.certificate, tls.key)),
                )
                .map_err(|e| format!("the TLS certificate or key is not usable: {e}"))?;
        }
        let incoming = tokio_stream_of(listener);
        server
            .add_service(FlightServiceServer::new(self))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(|e| format!("the Flight SQL server stopped: {e}"))
    }
}

/// The listener's connections as the stream tonic serves.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let next = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((next, listener))
    })
}

/// Binds `addr` (a port of 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn status(error: crate::Error) -> Status {
    match &error {
        crate::Error::Query { .. } => Status::invalid_argument(error.explain()),
        _ => Status::internal(error.explain()),
    }
}

/// A query that failed while it ran. The client's doing (a cast or a division that
/// fails on the data, a bad argument to a function) is INVALID_ARGUMENT, a memory limit
/// RESOURCE_EXHAUSTED, and the rest (reading the lake) INTERNAL.
fn execution_status(error: &DataFusionError) -> Status {
    let message = error.strip_backtrace();
    match error.find_root() {
        DataFusionError::ArrowError(arrow, _)
            if matches!(
                **arrow,
                arrow::error::ArrowError::IoError(..) | arrow::error::ArrowError::ExternalError(_)
            ) =>
        {
            Status::internal(message)
        }
        DataFusionError::ArrowError(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::SQL(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Execution(_) => Status::invalid_argument(message),
        DataFusionError::ResourcesExhausted(_) => Status::resource_exhausted(message),
        _ => Status::internal(message),
    }
}

/// A prepared statement's handle: the SQL, and the parameters once bound (one row,
/// Arrow IPC).
#[derive(serde::Serialize, serde::Deserialize)]
struct Handle {
    sql: String,
    #[serde(default)]
    parameters: Option<String>,
}

impl Handle {
    fn encode(&self) -> Result<bytes::Bytes, Status> {
        serde_json::to_vec(self)
            .map(Into::into)
            .map_err(|e| Status::internal(e.to_string()))
    }

    fn decode(bytes: &[u8]) -> Result<Self, Status> {
        serde_json::from_slice(bytes)
            .map_err(|_| Status::invalid_argument("not a prepared statement handle of this server"))
    }
}

/// JDBC and ADBC send `?` placeholders; DataFusion numbers them `$1`, `$2`, ….
fn number_placeholders(sql: &str) -> Result<String, Status> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| Status::invalid_argument(format!("cannot read the query: {e}")))?;
    let mut n = 0;
    let mut out = String::with_capacity(sql.len());
    for token in tokens {
        match token {
            Token::Placeholder(p) if p == "?" => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            other => out.push_str(&other.to_string()),
        }
    }
    Ok(out)
}

impl FlightSql {
    fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.auth.check(request.metadata())
    }

    /// Plans a handle's SQL with its parameters bound, cast to the types the query
    /// gives them.
    async fn plan(&self, handle: &Handle) -> Result<DataFrame, Status> {
        let frame = self.lake.plan(&handle.sql).await.map_err(status)?;
        let Some(parameters) = &handle.parameters else {
            return Ok(frame);
        };
        let bytes = BASE64_STANDARD
            .decode(parameters)
            .map_err(|_| Status::invalid_argument("bad parameters in the handle"))?;
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let batch = reader
            .into_iter()
            .next()
            .transpose()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let Some(batch) = batch else { return Ok(frame) };
        let types = frame
            .logical_plan()
            .get_parameter_types()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut values = Vec::with_capacity(batch.num_columns());
        for (i, column) in batch.columns().iter().enumerate() {
            let value = ScalarValue::try_from_array(column, 0)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            let value = match types.get(&format!("${}", i + 1)).cloned().flatten() {
                Some(wanted) if wanted != value.data_type() => {
                    value.cast_to(&wanted).map_err(|e| {
                        Status::invalid_argument(format!(
                            "parameter {} is not a {wanted}: {e}",
                            i + 1
                        ))
                    })?
                }
                _ => value,
            };
            values.push(value);
        }
        frame
            .with_param_values(values)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }

    /// The flight info of a metadata command: its ticket is the command itself.
    fn command_info(
        &self,
        schema: &Schema,
        command: &impl ProstMessageExt,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        Self::info(
            schema,
            Ticket::new(command.as_any().encode_to_vec()),
            request.into_inner(),
        )
    }

    fn info(
        schema: &Schema,
        ticket: Ticket,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    /// Runs a planned query and streams its batches under the schema the flight info
    /// gave (the logical plan's).
    async fn stream(
        frame: DataFrame,
    ) -> Result<Response<Stream_<arrow_flight::FlightData>>, Status> {
        let schema: SchemaRef = frame.schema().inner().clone();
        let batches = frame
            .execute_stream()
            .await
            .map_err(|e| execution_status(&e))?
            .map_err(|e| FlightError::Tonic(Box::new(execution_status(&e))));
        Ok(Response::new(Self::encode(schema, batches)))
    }

    fn encode(
        schema: SchemaRef,
        batches: impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
    ) -> Stream_<arrow_flight::FlightData> {
        Box::pin(
            FlightDataEncoderBuilder::new()
                .with_schema(schema)
                .build(batches)
                .map_err(Status::from),
        )
    }

    fn one(batch: RecordBatch) -> Response<Stream_<arrow_flight::FlightData>> {
        let schema = batch.schema();
        Response::new(Self::encode(schema, futures::stream::iter([Ok(batch)])))
    }
}

fn ipc(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &Default::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(message.0)
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = Self;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Stream_<HandshakeResponse>>, Status> {
        self.auth.handshake(request.metadata())?;
        let token = self.auth.token().to_owned();
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into_bytes().into(),
        };
        let mut response: Response<Stream_<HandshakeResponse>> =
            Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        let header = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("the token cannot be a header"))?;
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let frame = self.lake.plan(&query.query).await.map_err(status)?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        let ticket = Ticket::new(ticket.as_any().encode_to_vec());
        Self::info(frame.schema().as_arrow(), ticket, request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        let sql = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| Status::invalid_argument("not a statement ticket of this server"))?;
        let frame = self.lake.plan(&sql).await.map_err(status)?;
        Self::stream(frame).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.check(&request)?;
        let sql = number_placeholders(&query.query)?;
        let frame = self.lake.plan(&sql).await.map_err(status)?;
        let types = frame
            .logical_plan()
            .get_parameter_types()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let parameters: Vec<Field> = (1..=types.len())
            .map(|n| {
                let name = format!("${n}");
                let kind = types
                    .get(&name)
                    .cloned()
                    .flatten()
                    .unwrap_or(DataType::Utf8);
                Field::new(name, kind, true)
            })
            .collect();
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Handle {
                sql,
                parameters: None,
            }
            .encode()?,
            dataset_schema: ipc(frame.schema().as_arrow())?,
            parameter_schema: ipc(&Schema::new(parameters))?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.check(&request)?;
        let mut handle = Handle::decode(&query.prepared_statement_handle)?;
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
                request.into_inner().map_err(FlightError::from),
            )
            .try_collect()
            .await
            .map_err(|e| Status::invalid_argument(format!("cannot read the parameters: {e}")))?;
        if let Some(batch) = batches.into_iter().find(|b| b.num_rows() > 0) {
            if batch.num_rows() > 1 {
                return Err(Status::invalid_argument(
                    "one set of parameters per execution: this server runs queries, not batches of updates",
                ));
            }
            let mut bytes = Vec::new();
            let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema())
                .map_err(|e| Status::internal(e.to_string()))?;
            writer
                .write(&batch)
                .map_err(|e| Status::internal(e.to_string()))?;
            writer
                .finish()
                .map_err(|e| Status::internal(e.to_string()))?;
            drop(writer);
            handle.parameters = Some(BASE64_STANDARD.encode(bytes));
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.encode()?),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let frame = self
            .plan(&Handle::decode(&query.prepared_statement_handle)?)
            .await?;
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        Self::info(frame.schema().as_arrow(), ticket, request.into_inner())
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        let frame = self
            .plan(&Handle::decode(&query.prepared_statement_handle)?)
            .await?;
        Self::stream(frame).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        // Nothing is kept per statement.
        self.check(&request)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.clone().into_builder(metadata::sql_info()?).schema();
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        Self::info(&schema, ticket, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        let data: &SqlInfoData = metadata::sql_info()?;
        let batch = query.into_builder(data).build().map_err(Status::from)?;
        Ok(Self::one(batch))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.command_info(&schema, &query, request)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        Ok(Self::one(metadata::catalogs(query)?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.command_info(&schema, &query, request)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        Ok(Self::one(metadata::schemas(query)?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.command_info(&schema, &query, request)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        Ok(Self::one(metadata::tables(&self.lake, query).await?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.command_info(&schema, &query, request)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        Ok(Self::one(metadata::table_types(query)?))
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        Err(Status::unimplemented(format!(
            "this server does not serve `{}`",
            message.type_url
        )))
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        self.check(&request)?;
        Err(Status::unimplemented(format!(
            "this server does not support the action `{}`: it is read-only and keeps no sessions",
            request.get_ref().r#type
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

#[cfg(test)]
mod tests {
    use super::number_placeholders;

    #[test]
    fn question_marks_become_numbered_placeholders_outside_strings() {
        assert_eq!(
            number_placeholders("SELECT '?' AS q FROM events WHERE a = ? AND b = ?").expect("sql"),
            "SELECT '?' AS q FROM events WHERE a = $1 AND b = $2"
        );
    }
}
