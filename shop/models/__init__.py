"""Tortoise models of the commerce side, split by responsibility; all in app `models`."""

from shop.models.access import AccessGrant, AccessOrder, AccessStatus
from shop.models.accounts import Account, AccountRole, Tenant, WebSession
from shop.models.buyers import BlockedBuyer, BlockSource
from shop.models.cart import Cart, CartLine
from shop.models.catalog import (
    Coupon,
    CouponKind,
    Product,
    ProductKind,
    StockItem,
    Variation,
)
from shop.models.files import FulfilmentNote, ProductFile
from shop.models.money import LedgerEntry, Withdrawal
from shop.models.mp_accounts import ConnectedCharge, MoneyMode, MoneyModeChange, MPConnection
from shop.models.notices import NoticeKind, NoticeStatus, SellerNotice
from shop.models.orders import DeliveryPath, Order, Payment, WebhookEvent
from shop.models.payouts import Payout
from shop.models.ratings import AskStatus, Rating, RatingAsk
from shop.models.refund_leases import RefundLease
from shop.models.support import AdminRequest, AdminRequestKind, AdminRequestStatus
from shop.models.tickets import Ticket, TicketSettings, TicketStatus

__all__ = [
    "Cart",
    "CartLine",
    "AccessGrant",
    "AccessOrder",
    "AccessStatus",
    "Account",
    "AccountRole",
    "AdminRequest",
    "AdminRequestKind",
    "AdminRequestStatus",
    "AskStatus",
    "BlockSource",
    "BlockedBuyer",
    "ConnectedCharge",
    "Coupon",
    "CouponKind",
    "DeliveryPath",
    "FulfilmentNote",
    "LedgerEntry",
    "MPConnection",
    "MoneyMode",
    "MoneyModeChange",
    "NoticeKind",
    "NoticeStatus",
    "Order",
    "Payment",
    "Payout",
    "Product",
    "ProductFile",
    "ProductKind",
    "Rating",
    "RatingAsk",
    "RefundLease",
    "SellerNotice",
    "StockItem",
    "Tenant",
    "Ticket",
    "TicketSettings",
    "TicketStatus",
    "Variation",
    "WebSession",
    "WebhookEvent",
    "Withdrawal",
]
