"""Taking a finished edit's result into the archive: the one place a provider's result reaches the disk.

A hosted provider's `output_url` is fetched under the fetch policy (fetch.py) and must open as a video. A
result rendered on this machine is read from the rendering provider's own job folder, and only when the
edit's provider is that provider and the URL is the name it gives (`local_result_url`): no answer can make
the server copy another local file.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx2

from aleph_mcp.edits.before_after import make_sheet
from aleph_mcp.media.archive import Archive
from aleph_mcp.media.fetch import FetchPolicy
from aleph_mcp.media.thumbnails import save_thumbnail
from aleph_mcp.media.transfer import archive_file, download
from aleph_mcp.models import Edit
from aleph_mcp.providers.base import Provider, RendersHere, local_result_url


class Archiver:
    def __init__(
        self,
        archive: Archive,
        http: httpx2.AsyncClient,
        providers: Mapping[str, Provider],
        policy: FetchPolicy,
    ) -> None:
        self.archive = archive
        self.http = http
        self.providers = providers
        self.policy = policy

    def _renderer(self, edit: Edit) -> RendersHere | None:
        provider = self.providers.get(edit.provider)
        if not isinstance(provider, RendersHere) or edit.provider_task_id is None:
            return None
        return provider if edit.output_url == local_result_url(edit.provider_task_id) else None

    async def video(self, edit: Edit) -> str:
        """Archive the result video; its location. Raises what `media.transfer.download` raises."""
        assert edit.output_url is not None
        dest = self.archive.video_location(edit.edit_id)
        renderer = self._renderer(edit)
        if renderer is not None:
            assert edit.provider_task_id is not None
            source = renderer.output_file(edit.provider_task_id)
            await archive_file(source, dest, archive=self.archive)
        else:
            await download(self.http, edit.output_url, dest, archive=self.archive, policy=self.policy)
        return dest

    async def thumbnail(self, edit: Edit, video: str) -> str | None:
        return await save_thumbnail(
            self.http, self.archive, edit.edit_id, edit.thumbnail_url, video, policy=self.policy
        )

    async def compare(self, edit: Edit, video: str) -> str | None:
        """The before/after sheet (before_after.py), made now that the output is here."""
        return await make_sheet(self.archive, edit, video)

    def discard(self, edit: Edit) -> None:
        """Once archived, a job rendered here is not kept twice: its folder (and input copy) goes."""
        renderer = self._renderer(edit)
        if renderer is not None and edit.provider_task_id is not None:
            renderer.discard(edit.provider_task_id)

    async def remove(self, edit: Edit) -> None:
        """Delete whatever of the result reached the archive (it is not a result after all)."""
        await self.archive.delete(self.archive.video_location(edit.edit_id))
