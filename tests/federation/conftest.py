from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation import feed, keys
from federation.models import NodeKey
from node.settings import Settings
from tests.conftest import Database


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
