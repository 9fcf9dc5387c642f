"""Tortoise models of the commerce side, split by responsibility; all in app `models`."""

from shop.models.access import AccessGrant, AccessOrder, AccessStatus
from shop.models.accounts import Account, AccountRole, Tenant, WebSession
from shop.models.buyers import BlockedBuyer, BlockSource
from shop.models.catalog import (
    Coupon,
    CouponKind,
    Product,
    ProductKind,
    StockItem,
    Variation,
)
from shop.models.money import LedgerEntry, Withdrawal
from shop.models.notices import NoticeKind, NoticeStatus, SellerNotice
from shop.models.orders import DeliveryPath, Order, Payment, WebhookEvent
from shop.models.support import AdminRequest, AdminRequestKind, AdminRequestStatus

__all__ = [
    "AccessGrant",
    "AccessOrder",
    "AccessStatus",
    "Account",
    "AccountRole",
    "AdminRequest",
    "AdminRequestKind",
    "AdminRequestStatus",
    "BlockSource",
    "BlockedBuyer",
    "Coupon",
    "CouponKind",
    "DeliveryPath",
    "LedgerEntry",
    "NoticeKind",
    "NoticeStatus",
    "Order",
    "Payment",
    "Product",
    "ProductKind",
    "SellerNotice",
    "StockItem",
    "Tenant",
    "Variation",
    "WebSession",
    "WebhookEvent",
    "Withdrawal",
]
