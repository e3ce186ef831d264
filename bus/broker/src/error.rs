//! Broker errors: stable code, whose fault, whether to retry, and a message in Vietnamese
//! (default) and English that says what is wrong, where, and what to do.

use store::StoreError;

/// Who has to act for the failed call to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller asked for something that cannot be done (bad mailbox name, unknown delivery).
    Caller,
    /// The broker (its store or its server) failed; the caller did nothing wrong.
    Broker,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A mailbox name that cannot be a unit code (empty, too long, control characters).
    #[error("broker.invalid_mailbox: mailbox {mailbox:?} is not usable: {why}")]
    InvalidMailbox { mailbox: String, why: &'static str },
    /// `ack`/`release`/`dead_letter` of an id that was never published to this mailbox.
    #[error("broker.unknown_delivery: no message {id:?} was ever published to mailbox {mailbox:?}")]
    UnknownDelivery { mailbox: String, id: String },
    /// The durable state failed.
    #[error("broker.store: {0}")]
    Store(#[from] StoreError),
    /// RabbitMQ did not answer or failed a call (after one reconnect and retry).
    #[error("broker.amqp: RabbitMQ {op} failed: {detail}")]
    Amqp { op: &'static str, detail: String },
    /// RabbitMQ refused to store a message (basic.nack), e.g. a full mailbox under the
    /// `reject-publish` length limit.
    #[error("broker.publish_refused: RabbitMQ refused a message for mailbox {mailbox:?}")]
    PublishRefused { mailbox: String },
}

impl BrokerError {
    pub fn code(&self) -> &'static str {
        match self {
            BrokerError::InvalidMailbox { .. } => "broker.invalid_mailbox",
            BrokerError::UnknownDelivery { .. } => "broker.unknown_delivery",
            BrokerError::Store(_) => "broker.store",
            BrokerError::Amqp { .. } => "broker.amqp",
            BrokerError::PublishRefused { .. } => "broker.publish_refused",
        }
    }

    pub fn fault(&self) -> Fault {
        match self {
            BrokerError::InvalidMailbox { .. } | BrokerError::UnknownDelivery { .. } => {
                Fault::Caller
            }
            BrokerError::Store(_)
            | BrokerError::Amqp { .. }
            | BrokerError::PublishRefused { .. } => Fault::Broker,
        }
    }

    /// Whether the same call may succeed if retried later.
    pub fn retryable(&self) -> bool {
        match self {
            BrokerError::InvalidMailbox { .. } | BrokerError::UnknownDelivery { .. } => false,
            BrokerError::Store(e) => e.retryable(),
            BrokerError::Amqp { .. } | BrokerError::PublishRefused { .. } => true,
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            BrokerError::InvalidMailbox { .. } => format!(
                "{self}. What to do: use the recipient's unit code (e.g. 000.00.00.H41) as the mailbox."
            ),
            BrokerError::UnknownDelivery { .. } => format!(
                "{self}. What to do: acknowledge only ids returned by a fetch of this same mailbox."
            ),
            BrokerError::Store(e) => e.message_en(),
            BrokerError::Amqp { .. } => format!(
                "{self}. What to do: check that RabbitMQ is running and reachable at the configured [broker] url (rabbitmqctl status); the relay reconnects by itself, so retry in a few seconds."
            ),
            BrokerError::PublishRefused { .. } => format!(
                "{self}. What to do: the mailbox is probably full (max-length policy, reject-publish); let the recipient fetch its backlog or raise the limit, then retry."
            ),
        }
    }

    pub fn message_vi(&self) -> String {
        match self {
            BrokerError::InvalidMailbox { mailbox, why } => format!(
                "Hộp thư {mailbox:?} không dùng được ({why}). Cần làm: dùng mã định danh của đơn vị nhận (ví dụ 000.00.00.H41) làm tên hộp thư."
            ),
            BrokerError::UnknownDelivery { mailbox, id } => format!(
                "Không có gói tin {id:?} nào từng được đưa vào hộp thư {mailbox:?}. Cần làm: chỉ xác nhận các mã do lệnh nhận của chính hộp thư này trả về."
            ),
            BrokerError::Store(e) => e.message_vi(),
            BrokerError::Amqp { op, detail } => format!(
                "RabbitMQ không thực hiện được lệnh {op} ({detail}). Cần làm: kiểm tra RabbitMQ đang chạy và truy cập được ở địa chỉ [broker] url đã cấu hình (rabbitmqctl status); trục tự kết nối lại, hãy thử lại sau vài giây."
            ),
            BrokerError::PublishRefused { mailbox } => format!(
                "RabbitMQ từ chối lưu gói tin vào hộp thư {mailbox:?}. Cần làm: hộp thư có lẽ đã đầy (chính sách max-length, reject-publish); hãy để đơn vị nhận lấy bớt gói tin hoặc nâng giới hạn, rồi thử lại."
            ),
        }
    }
}
