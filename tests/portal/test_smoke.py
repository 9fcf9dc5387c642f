from tests.helpers.portal import make_seller


async def test_pages_render_for_a_store(portal):
    seller = await make_seller(portal)
    for path in (
        "/",
        "/products",
        "/products/new",
        "/coupons",
        "/coupons/new",
        "/orders",
        "/money",
        "/settings",
        "/support",
        "/bot",
        "/dashboard/live",
    ):
        status, body = await seller.text(path)
        assert status == 200, (path, body[:2000])
