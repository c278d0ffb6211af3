//! From a `processing` order to the registrar and back: the one place ACME asks for a
//! signature. The order id is the transaction id, so a retried or concurrent call is answered
//! from the store and never signs twice.

use enrollgate_acme::Problem;
use enrollgate_acme::account::Account;
use enrollgate_acme::finalize::{order_failed, order_issued};
use enrollgate_acme::order::{Order, OrderStatus};
use enrollgate_model::Outcome;

use super::Ctx;

/// Asks the registrar for the certificate of a `processing` order and stores the result:
/// `valid` with a certificate record, `invalid` with the refusal, or still `processing`.
pub(crate) async fn drive(
    ctx: &Ctx<'_>,
    order: &mut Order,
    account: &Account,
    route: &str,
) -> Result<(), Problem> {
    let request = order.issuance_request(account, route)?;
    match ctx.state.registrar.issue(request).await {
        Outcome::Issued(issued) => {
            if let Some(stored) = finished_meanwhile(ctx, order).await? {
                *order = stored;
                return Ok(());
            }
            let record = order_issued(order, &issued, &mut super::fill_random)?;
            ctx.records.put_cert(&record).await?;
            ctx.records.put_order(order).await?;
            tracing::info!(
                order = %order.id, account = %account.id, route, serial = %record.serial,
                "acme certificate ready"
            );
        }
        Outcome::Pending { .. } => {}
        Outcome::Rejected(reason) => {
            order_failed(order, Problem::from_reject(&reason));
            release_replaced(ctx, order).await?;
            ctx.records.put_order(order).await?;
        }
    }
    Ok(())
}

/// The stored order, when another request already finished it.
async fn finished_meanwhile(ctx: &Ctx<'_>, order: &Order) -> Result<Option<Order>, Problem> {
    let stored = ctx.records.order(&order.id).await?;
    Ok(stored.filter(|o| o.status == OrderStatus::Valid))
}

/// A failed order no longer replaces its certificate (RFC 9773 section 5).
async fn release_replaced(ctx: &Ctx<'_>, order: &Order) -> Result<(), Problem> {
    let Some(text) = &order.replaces else {
        return Ok(());
    };
    if let Some(mut cert) = ctx.records.cert_by_ari(text).await? {
        cert.release_replacement(&order.id);
        ctx.records.put_cert(&cert).await?;
    }
    Ok(())
}
