"""Issue 16 §4: every storefront slash command has its pt-BR name and description by default
and an English name and description for English clients, valid for Discord (lower-case,
1–32 characters of letters, digits, `-` and `_`; descriptions 1–100 characters: see
https://discord.com/developers/docs/interactions/application-commands#application-command-object-application-command-naming)."""

import re

from disnake.i18n import LocalizationStore

from worker.extensions.storefront import buyer, cart_ui, checkout_ui, fulfil_ui, panels, staff

COMMANDS = [
    buyer.meus_pedidos,
    checkout_ui.comprar,
    panels.painel,
    staff.estoque,
    staff.estoque_adicionar,
    staff.vendas_hoje,
    fulfil_ui.entregar,
    cart_ui.carrinho,
]
NAME = re.compile(r"^[-_\w]{1,32}$")


def test_every_storefront_command_has_an_english_name_and_description():
    for command in COMMANDS:
        command.body.localize(LocalizationStore(strict=False))  # what the bot does on sync
        body = command.body.to_dict()
        names, descriptions = body.get("name_localizations"), body.get("description_localizations")
        assert names and set(names) == {"en-US", "en-GB"}, body["name"]
        assert descriptions and set(descriptions) == {"en-US", "en-GB"}, body["name"]
        for name in [body["name"], *names.values()]:
            assert NAME.match(name) and name == name.lower(), name
        for text in [body["description"], *descriptions.values()]:
            assert 1 <= len(text) <= 100 and " / " not in text, text  # no "pt / en" mix left
