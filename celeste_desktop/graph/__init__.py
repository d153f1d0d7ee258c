"""The async Microsoft Graph client: wire types, listing, delta enumeration, verified downloads."""

from celeste_desktop.graph.client import DriveListing, FolderCounts, GraphClient
from celeste_desktop.graph.delta import DeltaCursorLike, DeltaEnumerator, DeltaMode, DeltaPage, DeltaResult
from celeste_desktop.graph.download import Downloader, DownloadProgress, DownloadResult
from celeste_desktop.graph.wire import Site, UserProfile

__all__ = [
    "DeltaCursorLike",
    "DeltaEnumerator",
    "DeltaMode",
    "DeltaPage",
    "DeltaResult",
    "DownloadProgress",
    "DownloadResult",
    "Downloader",
    "DriveListing",
    "FolderCounts",
    "GraphClient",
    "Site",
    "UserProfile",
]
