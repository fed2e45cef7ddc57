from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation import feed, keys
from federation.models import NodeKey
from node.core.settings import Settings
from tests.conftest import Database
from tests.federation import forgery


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """A Portuguese node, federation switched on."""
    return Settings(database_url=database.url, data_dir=tmp_path, country="PT")


@pytest.fixture
async def signing_key(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> keys.SigningKey:
    key = keys.generate()
    keys.save(key, feed.key_path(settings, key.key_id))
    async with sessions() as session:
        session.add(NodeKey(key_id=key.key_id, public_key=key.public_b64))
        await session.commit()
    return key


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start forged peers (`forgery.Peer`) as real HTTP processes; stopped after the test."""
    yield from forgery.serving(tmp_path)
