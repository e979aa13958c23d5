"""Core losses, each small and tested on its own: the distributed video-text contrastive loss."""

from .contrastive import gather_with_grad, gather_with_local_gradient, video_text_contrastive_loss


__all__ = ["gather_with_grad", "gather_with_local_gradient", "video_text_contrastive_loss"]
